// bookbridge's GraphiQL page: GraphiQL 3 with the explorer plugin and the headers tab.
// Public catalog reads need no token; for the rest put {"Authorization": "Bearer bbk_..."} in
// the Headers tab (see README.md).
(function () {
  "use strict";
  var EXAMPLE = [
    "# bookbridge GraphiQL: press the run button (or Ctrl-Enter).",
    "# Study sets, recommendations and analytics need a key in the Headers tab:",
    '#   {"Authorization": "Bearer bbk_..."}  (bookbridge keys create --name me --scopes admin)',
    "{",
    '  books(first: 5, filter: { search: "wizard" }) {',
    "    edges { node { title publisher { name } } }",
    "  }",
    "}",
    "",
  ].join("\n");

  var params = new URLSearchParams(window.location.search);
  var url = window.location.origin + window.location.pathname;
  var fetcher = GraphiQL.createFetcher({ url: url });
  var explorer = GraphiQLPluginExplorer.explorerPlugin();

  function App() {
    var state = React.useState(params.get("query") || EXAMPLE);
    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      plugins: [explorer],
      query: state[0],
      onEditQuery: function (query) {
        state[1](query);
      },
      variables: params.get("variables") || undefined,
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
      inputValueDeprecation: true,
    });
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(App));
})();
