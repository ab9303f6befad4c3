// Mounts GraphiQL on this gateway: queries over HTTP at /graphql, subscriptions over
// graphql-transport-ws at /graphql/ws. Put `Authorization: Bearer <access token>` (or
// `X-API-Key`) in the Headers tab; it is sent with queries and in connection_init.
(function () {
  var url = new URL("/graphql", window.location.href).toString();
  var subscriptionUrl = url.replace(/^http/, "ws") + "/ws";
  var fetcher = GraphiQL.createFetcher({ url: url, subscriptionUrl: subscriptionUrl });
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: "headers",
      defaultHeaders: JSON.stringify({ Authorization: "Bearer <access token>" }, null, 2),
      shouldPersistHeaders: true,
    })
  );
})();
