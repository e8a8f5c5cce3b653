"""Data files of the lookup service (shipped as package data)."""
