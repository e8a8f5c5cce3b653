// GraphiQL against this gateway's /graphql, with the query kept in the URL for sharing.
// Adapted from strawberry-graphql's graphiql.html (MIT), moved out of the page so that it
// runs under a Content-Security-Policy without inline scripts.
(function () {
  "use strict";
  var EXAMPLE_QUERY = [
    "# medcode's GraphQL API. Ctrl-Enter runs the query; Ctrl-Space completes.",
    "{",
    '  searchCodes(query: "heart attack", first: 5) {',
    "    totalCount",
    "    edges { node { system code title billable } }",
    "  }",
    "}",
    "",
  ].join("\n");

  var parameters = {};
  window.location.search.slice(1).split("&").forEach(function (entry) {
    var eq = entry.indexOf("=");
    if (eq >= 0) {
      parameters[decodeURIComponent(entry.slice(0, eq))] = decodeURIComponent(entry.slice(eq + 1));
    }
  });

  function updateURL(data) {
    Object.assign(parameters, data);
    var search = "?" + Object.keys(parameters)
      .filter(function (key) { return Boolean(parameters[key]); })
      .map(function (key) {
        return encodeURIComponent(key) + "=" + encodeURIComponent(parameters[key]);
      })
      .join("&");
    history.replaceState(null, "", search);
  }

  var fetcher = GraphiQL.createFetcher({ url: window.location.href.split("?")[0] });

  function GraphiQLWithExplorer() {
    var query = React.useState(parameters.q || EXAMPLE_QUERY);
    var variables = React.useState(parameters.variables);
    var headers = React.useState(parameters.headers);
    var explorer = React.useMemo(function () {
      return GraphiQLPluginExplorer.explorerPlugin();
    }, []);
    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      plugins: [explorer],
      query: query[0],
      variables: variables[0],
      headers: headers[0],
      onEditQuery: function (q) { query[1](q); updateURL({ q: q }); },
      onEditVariables: function (v) { variables[1](v); updateURL({ variables: v }); },
      onEditHeaders: function (h) { headers[1](h); },
      inputValueDeprecation: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
    });
  }

  ReactDOM.createRoot(document.getElementById("graphiql"))
    .render(React.createElement(GraphiQLWithExplorer));
})();
