//! The HTML pages, so every flow can be tried in a browser. No scripts: plain forms.

use kv_envelope::session::{Device, SessionRecord};

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
         goes into an <code>HttpOnly; Secure; SameSite=Lax</code> cookie.</p>\
         <h2>Or get a link</h2>\
         <form method=\"post\" action=\"/login/link\">\
         <label for=\"link-email\">Email</label> \
         <input id=\"link-email\" name=\"email\" type=\"email\" required maxlength=\"254\" autocomplete=\"email\"> \
         <button id=\"send-link\" type=\"submit\">Send me a link</button></form>\
         <p>A one-time link that logs you in once, for 15 minutes.</p>",
    )
}

/// After `POST /login/link`. `link`: only in local development (`DEV_MAGIC_LINKS=on`).
pub fn link_sent(link: Option<&str>) -> String {
    let body = match link {
        Some(link) => format!(
            "<p>A real app would now email you this link. This is local development \
             (<code>DEV_MAGIC_LINKS=on</code>), so here it is:</p>\
             <p><a id=\"magic-link\" href=\"{}\">Log in with this link</a></p>\
             <p>It works once, for 15 minutes.</p>",
            escape_html(link)
        ),
        None => "<p id=\"sent\">If that address can log in, a link is on its way. \
                 (This demo sends no email: its links are shown only in local development.)</p>"
            .to_string(),
    };
    page("Check your email", &body)
}

/// `GET /login/link?token=…`: the button that uses the link (a GET spends nothing).
pub fn confirm_link(token: &str) -> String {
    page(
        "Log in with your link",
        &format!(
            "<form method=\"post\" action=\"/login/link/confirm\">\
             <input type=\"hidden\" name=\"token\" value=\"{}\">\
             <button id=\"use-link\" type=\"submit\">Log in</button></form>\
             <p>The link works once.</p>",
            escape_html(token)
        ),
    )
}

/// `GET /devices`: the user's signed-in devices, this one marked, a sign-out button each.
pub fn devices(me: &SessionRecord, devices: &[Device]) -> String {
    let mut rows = String::new();
    for d in devices {
        let label = d.label.as_deref().unwrap_or("Unnamed device");
        let this = if d.current {
            " <strong class=\"current\">(this device)</strong>"
        } else {
            ""
        };
        rows.push_str(&format!(
            "<li class=\"device\" data-handle=\"{handle}\">{label}{this}<br>\
             <small>signed in {created} · last seen {seen} (to the day) · ends {ends} unless used</small><br>\
             <form method=\"post\" action=\"/devices/revoke\">\
             <input type=\"hidden\" name=\"handle\" value=\"{handle}\">\
             <button class=\"revoke\" type=\"submit\">Sign out{what}</button></form></li>",
            handle = escape_html(d.handle.as_str()),
            label = escape_html(label),
            created = utc(d.created_at),
            seen = utc(d.last_seen_at),
            ends = utc(d.expires_at),
            what = if d.current { " (this device)" } else { "" },
        ));
    }
    page(
        "Your devices",
        &format!(
            "<p>Signed in as <strong>{}</strong> on {} device(s):</p><ul id=\"devices\">{rows}</ul>",
            escape_html(&me.email),
            devices.len()
        ),
    )
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM UTC` (days from the civil calendar).
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// `GET /`: who is signed in, and the session actions.
pub fn home(session: Option<&SessionRecord>) -> String {
    let body = match session {
        Some(s) => format!(
            "<p id=\"who\">Signed in as <strong>{}</strong> (user <code>{}</code>).</p>\
             <p><a href=\"/me\">Your session as JSON</a> · <a id=\"devices-link\" href=\"/devices\">Your devices</a></p>\
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
