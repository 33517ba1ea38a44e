//! The service's own documentation: its part of the contract as
//! `/openapi.json`, and Swagger UI at `/docs`, with every asset served by
//! the service itself (no CDN), so it works offline.

use api_common::{ApiError, ErrorCode};
use http::StatusCode;
use std::sync::Arc;

/// The committed contract, as built into the binary.
const CONTRACT: &str = include_str!("../../../../openapi.yaml");

/// What `/openapi.json` and `/docs` serve for one service.
pub struct Docs {
    document: String,
    swagger: Arc<utoipa_swagger_ui::Config<'static>>,
}

impl Docs {
    /// The operations of `tags`, titled `service`, with `servers` set to
    /// the serving origin so that "try it out" calls this service.
    pub fn for_service(service: &str, tags: &[&str]) -> anyhow::Result<Docs> {
        let mut document: serde_json::Value = serde_yaml::from_str(CONTRACT)?;
        openapi_part::keep_tags(&mut document, tags);
        document["info"]["title"] =
            format!("{service} (part of the Order & Payment contract)").into();
        for item in document["paths"]
            .as_object_mut()
            .into_iter()
            .flat_map(|p| p.values_mut())
        {
            if let Some(item) = item.as_object_mut() {
                item.remove("servers");
            }
        }
        document["servers"] = serde_json::json!([{"url": "/", "description": "this service"}]);
        Ok(Docs {
            document: serde_json::to_string(&document)?,
            swagger: Arc::new(utoipa_swagger_ui::Config::from("/openapi.json")),
        })
    }

    pub fn openapi_json(&self) -> Result<http::Response<dropshot::Body>, ApiError> {
        respond("application/json", self.document.clone().into_bytes())
    }

    /// `/docs` (the page) and `/docs/<asset>` (Swagger UI's files).
    pub fn page(&self, path: &[String]) -> Result<http::Response<dropshot::Body>, ApiError> {
        let tail = path.join("/");
        if tail.is_empty() || tail == "index.html" {
            return respond("text/html; charset=utf-8", PAGE.as_bytes().to_vec());
        }
        match utoipa_swagger_ui::serve(&tail, self.swagger.clone()) {
            Ok(Some(file)) => respond(&file.content_type, file.bytes.to_vec()),
            Ok(None) => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                format!("no documentation asset {tail}"),
            )),
            Err(e) => Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::InternalError,
                e.to_string(),
            )),
        }
    }
}

fn respond(content_type: &str, body: Vec<u8>) -> Result<http::Response<dropshot::Body>, ApiError> {
    http::Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(body.into())
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::InternalError,
                e.to_string(),
            )
        })
}

/// Swagger UI's own index.html links its assets relatively, which breaks
/// at `/docs` (no trailing slash); this page links them absolutely.
const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>API documentation</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      tryItOutEnabled: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"
    });
  </script>
</body>
</html>
"##;
