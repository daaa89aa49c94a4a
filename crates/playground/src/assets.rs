//! The page: plain HTML, CSS and JavaScript compiled into the binary (nothing is fetched from
//! the internet).

/// The file served at `path`, with its content type.
pub(crate) fn file(path: &str) -> Option<(&'static str, &'static str)> {
    match path {
        "/" | "/index.html" => Some((
            include_str!("assets/index.html"),
            "text/html; charset=utf-8",
        )),
        "/app.js" => Some((
            include_str!("assets/app.js"),
            "text/javascript; charset=utf-8",
        )),
        "/style.css" => Some((include_str!("assets/style.css"), "text/css; charset=utf-8")),
        _ => None,
    }
}
