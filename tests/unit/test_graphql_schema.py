"""The composed GraphQL schema: checked-in SDL is fresh, the public contract holds, no clashes."""

from __future__ import annotations

from pathlib import Path

import pytest
import strawberry
from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    Undefined,
    get_named_type,
)
from graphql import (
    build_schema as build_sdl,
)

from gateway.schema import DuplicateField, _merge, build_schema
from services.shared.product import discover
from services.shared.settings import Settings

GRAPHQL_DIR = Path(__file__).resolve().parents[2] / "schema" / "graphql"
PRODUCTS = discover()
KINDS = (GraphQLObjectType, GraphQLInterfaceType, GraphQLUnionType, GraphQLEnumType,
         GraphQLInputObjectType, GraphQLScalarType)

# Contract names that only the accounts product provides.
ACCOUNTS_OWNED = {
    "Query.viewer", "Viewer", "Quota", "ViewerKind", "SessionPayload", "AuthError",
    "AuthResult", "RegisterInput", "LoginInput", "Mutation", "Mutation.startGuestSession",
    "Mutation.register", "Mutation.login",
}


@pytest.fixture(scope="module")
def composed() -> strawberry.Schema:
    return build_schema(PRODUCTS, Settings())


def test_checked_in_sdl_is_current(composed: strawberry.Schema) -> None:
    checked_in = (GRAPHQL_DIR / "schema.graphql").read_text(encoding="utf-8")
    assert str(composed).strip() == checked_in.strip(), (
        "schema/graphql/schema.graphql is stale: run `python -m gateway.sdl` to refresh it"
    )


# -- the public contract -----------------------------------------------------------------

Problems = tuple[list[str], list[str]]  # (missing names, incompatible shapes)


def _has_default(arg: GraphQLArgument | GraphQLInputField) -> bool:
    node = arg.ast_node  # SDL built by graphql-core keeps the default in the AST only
    return arg.default_value is not Undefined or (
        node is not None and node.default_value is not None
    )


def _output_compatible(contract: GraphQLOutputType, actual: GraphQLOutputType) -> bool:
    """Same named type and the same list / non-null wrapping."""
    while isinstance(contract, GraphQLNonNull | GraphQLList):
        if type(contract) is not type(actual):
            return False
        contract, actual = contract.of_type, actual.of_type  # type: ignore[union-attr]
    return not isinstance(actual, GraphQLNonNull | GraphQLList) and (
        contract.name == actual.name  # type: ignore[union-attr]
    )


def _input_compatible(
    contract: GraphQLInputType, actual: GraphQLInputType, has_default: bool
) -> bool:
    """Every value the contract accepts is accepted; omission is covered by a default."""
    if isinstance(actual, GraphQLNonNull):
        if isinstance(contract, GraphQLNonNull):
            contract = contract.of_type
        elif not has_default:
            return False
        return _input_compatible(contract, actual.of_type, False)
    if isinstance(contract, GraphQLNonNull):  # accepting null as well is fine
        contract = contract.of_type
    if isinstance(contract, GraphQLList) or isinstance(actual, GraphQLList):
        return (
            isinstance(contract, GraphQLList)
            and isinstance(actual, GraphQLList)
            and _input_compatible(contract.of_type, actual.of_type, False)
        )
    return get_named_type(contract).name == get_named_type(actual).name


def _required(arg: GraphQLArgument | GraphQLInputField) -> bool:
    return isinstance(arg.type, GraphQLNonNull) and not _has_default(arg)


def _compare_inputs(
    where: str,
    contract: dict[str, GraphQLArgument] | dict[str, GraphQLInputField],
    actual: dict[str, GraphQLArgument] | dict[str, GraphQLInputField],
    problems: Problems,
) -> None:
    missing, wrong = problems
    for name, wanted in contract.items():
        found = actual.get(name)
        if found is None:
            missing.append(f"{where}({name}:)")
        elif not _input_compatible(wanted.type, found.type, _has_default(found)):
            wrong.append(f"{where}({name}:) is {found.type}, contract says {wanted.type}")
    for name in actual.keys() - contract.keys():
        if _required(actual[name]):
            wrong.append(f"{where}({name}:) is required but not in the contract")


def _kind(type_: object) -> str:
    """The GraphQL kind (strawberry subclasses graphql-core's type classes)."""
    return next(k.__name__ for k in KINDS if isinstance(type_, k))


def contract_problems(contract: GraphQLSchema, actual: GraphQLSchema) -> Problems:
    """Names of the contract missing from ``actual``, and names present with another shape."""
    problems: Problems = ([], [])
    missing, wrong = problems
    for name, wanted in contract.type_map.items():
        if name.startswith("__"):
            continue
        found = actual.type_map.get(name)
        if found is None:
            missing.append(name)
            continue
        if _kind(found) != _kind(wanted):
            wrong.append(f"{name} is a {_kind(found)}, contract says {_kind(wanted)}")
            continue
        if isinstance(wanted, GraphQLObjectType | GraphQLInterfaceType):
            assert isinstance(found, GraphQLObjectType | GraphQLInterfaceType)
            for field_name, field in wanted.fields.items():
                where = f"{name}.{field_name}"
                have = found.fields.get(field_name)
                if have is None:
                    missing.append(where)
                    continue
                if not _output_compatible(field.type, have.type):
                    wrong.append(f"{where} is {have.type}, contract says {field.type}")
                _compare_inputs(where, field.args, have.args, problems)
        elif isinstance(wanted, GraphQLInputObjectType):
            assert isinstance(found, GraphQLInputObjectType)
            _compare_inputs(name, wanted.fields, found.fields, problems)
        elif isinstance(wanted, GraphQLEnumType):
            assert isinstance(found, GraphQLEnumType)
            missing += [f"{name}.{v}" for v in wanted.values if v not in found.values]
        elif isinstance(wanted, GraphQLUnionType):
            assert isinstance(found, GraphQLUnionType)
            members = {t.name for t in found.types}
            missing += [f"{name} | {t.name}" for t in wanted.types if t.name not in members]
    return problems


def test_composed_schema_honours_the_public_contract(composed: strawberry.Schema) -> None:
    contract = build_sdl((GRAPHQL_DIR / "contract.graphql").read_text(encoding="utf-8"))
    missing, wrong = contract_problems(contract, composed._schema)
    assert not wrong, "the schema breaks the public contract:\n" + "\n".join(wrong)
    if "accounts" not in {p.name for p in PRODUCTS}:
        # Until the accounts product is installed, only its own names may be absent.
        missing = [name for name in missing if name not in ACCOUNTS_OWNED]
    assert not missing, "contract names missing from the schema:\n" + "\n".join(missing)


def test_the_contract_check_catches_breaking_changes() -> None:
    contract = build_sdl("""
        enum Kind { A B }
        input In { x: Int! }
        type T { f(a: Int = 1, b: [String!]): [Int!]! g: String k: Kind }
        union U = T
        type Query { t: T u: U }
    """)
    actual = build_sdl("""
        enum Kind { A }
        input In { x: Int y: String! }
        type T { f(a: Int! = 1, b: [String], c: Int): [Int]! k: Kind }
        type V { v: Int }
        union U = V
        type Query { t: T u: U }
    """)
    missing, wrong = contract_problems(contract, actual)
    assert sorted(missing) == ["Kind.B", "T.g", "U | T"]
    assert sorted(w.split(" ")[0] for w in wrong) == ["In(y:)", "T.f"]


# -- composition ---------------------------------------------------------------------------


def test_two_products_answering_one_field_is_an_error() -> None:
    @strawberry.type
    class First:
        @strawberry.field
        def shared(self) -> int:
            return 1

    @strawberry.type
    class Second:
        @strawberry.field
        def shared(self) -> int:
            return 2

        @strawberry.field
        def own(self) -> int:
            return 3

    with pytest.raises(DuplicateField, match=r"Query\.shared"):
        _merge("Query", [First, Second])


def test_distinct_fields_merge() -> None:
    @strawberry.type
    class First:
        a: int = 1

    @strawberry.type
    class Second:
        b: int = 2

    merged = _merge("Query", [First, Second])
    assert merged is not None
    names = {f.name for f in merged.__strawberry_definition__.fields}  # type: ignore[attr-defined]
    assert names == {"a", "b"}
    assert _merge("Mutation", []) is None
