//! The two HTML pages, so every flow can be tried in a browser. No scripts: plain forms.

use kv_envelope::session::SessionRecord;

use crate::http::escape_html;

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}\
form{display:inline-block;margin:.25rem .5rem .25rem 0}input,button{font:inherit;padding:.3rem .6rem}\
code{background:#f3f3f3;padding:0 .2rem}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} · kv-envelope demo</title><style>{STYLE}</style></head>\
         <body><h1>{title}</h1>{body}\
         <p><small><a href=\"/\">home</a> · <a href=\"/me\">/me</a> · <a href=\"/popular\">/popular</a> · \
         <a href=\"/_stats\">/_stats</a></small></p></body></html>\n"
    )
}

/// `GET /login`.
pub fn login() -> String {
    page(
        "Log in",
        "<form method=\"post\" action=\"/login\">\
         <label for=\"email\">Email</label> \
         <input id=\"email\" name=\"email\" type=\"email\" required maxlength=\"254\" autocomplete=\"email\"> \
         <button id=\"login\" type=\"submit\">Log in</button></form>\
         <p>Any address works: this demo has no passwords. A session is created in KV and its id \
         goes into an <code>HttpOnly; Secure; SameSite=Lax</code> cookie.</p>",
    )
}

/// `GET /`: who is signed in, and the session actions.
pub fn home(session: Option<&SessionRecord>) -> String {
    let body = match session {
        Some(s) => format!(
            "<p id=\"who\">Signed in as <strong>{}</strong> (user <code>{}</code>).</p>\
             <p><a href=\"/me\">Your session as JSON</a></p>\
             <form method=\"post\" action=\"/sessions/rotate\"><button id=\"rotate\" type=\"submit\">Rotate session id</button></form>\
             <form method=\"post\" action=\"/logout\"><button id=\"logout\" type=\"submit\">Log out</button></form>\
             <form method=\"post\" action=\"/sessions/logout-all\"><button id=\"logout-all\" type=\"submit\">Log out everywhere</button></form>",
            escape_html(&s.email),
            escape_html(&s.user_id),
        ),
        None => "<p id=\"who\">Not signed in. <a id=\"login-link\" href=\"/login\">Log in</a></p>".to_string(),
    };
    page("kv-envelope demo", &body)
}
