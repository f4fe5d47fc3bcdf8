// Swagger UI for /docs, from this server's files (no CDN). "Try it out" sends the CSRF token that
// state-changing requests need (the server refuses them without it).
"use strict";
(function () {
  const token = (document.querySelector("meta[name='csrf-token']") || {}).content || "";
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    requestInterceptor: (req) => { req.headers["X-CSRF-Token"] = token; return req; },
  });
})();
