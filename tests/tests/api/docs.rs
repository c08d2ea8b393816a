//! The Swagger UI under `/docs` carries a Content-Security-Policy that covers what the page
//! loads, `X-Content-Type-Options: nosniff` and no framing.

use jobs_tests::*;
use reqwest::Method;

fn get(server: &TestServer, path: &str) -> Reply {
    server.send(server.request(Method::GET, path))
}

/// The directives of a policy, by name.
fn directive<'a>(policy: &'a str, name: &str) -> Vec<&'a str> {
    policy
        .split(';')
        .map(str::trim)
        .find_map(|d| d.strip_prefix(name).filter(|rest| rest.starts_with(' ')))
        .unwrap_or_else(|| panic!("no {name} in {policy}"))
        .split_whitespace()
        .collect()
}

fn assert_security_headers(reply: &Reply, path: &str) {
    let policy =
        reply.header("content-security-policy").unwrap_or_else(|| panic!("{path}: no CSP"));
    assert_eq!(directive(&policy, "default-src"), ["'self'"], "{path}");
    assert_eq!(directive(&policy, "script-src"), ["'self'"], "{path}: no inline or eval");
    assert_eq!(directive(&policy, "frame-ancestors"), ["'none'"], "{path}");
    assert_eq!(directive(&policy, "object-src"), ["'none'"], "{path}");
    assert_eq!(reply.header("x-content-type-options").as_deref(), Some("nosniff"), "{path}");
    assert_eq!(reply.header("x-frame-options").as_deref(), Some("DENY"), "{path}");
}

/// The value of `attr="…"` in one tag.
fn attribute(tag: &str, attr: &str) -> Option<String> {
    let start = tag.find(&format!("{attr}=\""))? + attr.len() + 2;
    let end = tag[start..].find('"')? + start;
    Some(tag[start..end].to_owned())
}

/// A URL the page loads: it must stay on this origin (relative, no scheme or host).
fn assert_same_origin(url: &str) {
    assert!(!url.contains(':') && !url.starts_with("//"), "{url} leaves the origin");
}

#[test]
fn every_docs_page_carries_the_security_headers_the_redirect_and_errors_too() {
    let server = TestServer::start();
    for path in [
        "/docs",
        "/docs/",
        "/docs/index.html",
        "/docs/swagger-ui.css",
        "/docs/index.css",
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-initializer.js",
        "/docs/no-such-file",
    ] {
        assert_security_headers(&get(&server, path), path);
    }
    assert!(get(&server, "/docs").status.is_redirection());
    get(&server, "/docs/swagger-ui.css").assert_status(200);
    get(&server, "/docs/no-such-file").assert_status(404);
}

#[test]
fn the_policy_covers_every_script_and_stylesheet_of_the_docs_page() {
    let server = TestServer::start();
    let page = get(&server, "/docs/");
    page.assert_status(200);
    assert_security_headers(&page, "/docs/");
    let html = page.text.as_str();

    // Every <script> is an external file from this origin with nothing inline, which is what
    // `script-src 'self'` allows; each one is served, as JavaScript, with the headers.
    let mut scripts = 0;
    for chunk in html.split("<script").skip(1) {
        let (tag, rest) = chunk.split_once('>').unwrap();
        let inline = rest.split("</script>").next().unwrap();
        assert!(inline.trim().is_empty(), "inline script: {inline}");
        let src = attribute(tag, "src").unwrap_or_else(|| panic!("script without src: {tag}"));
        assert_same_origin(&src);
        let path = format!("/docs/{}", src.trim_start_matches("./"));
        let script = get(&server, &path);
        script.assert_status(200);
        assert!(script.header("content-type").unwrap().contains("javascript"), "{path}");
        assert_security_headers(&script, &path);
        scripts += 1;
    }
    assert!(scripts >= 3, "the bundle, the preset and the initializer: {html}");
    let handler = html.match_indices(" on").any(|(i, _)| {
        let rest = &html[i + 3..];
        let name = rest.bytes().take_while(u8::is_ascii_lowercase).count();
        name > 0 && rest[name..].starts_with('=')
    });
    assert!(!handler && !html.contains("javascript:"), "inline event handlers: {html}");

    // Stylesheets and icons come from this origin too.
    for chunk in html.split("<link").skip(1) {
        let tag = chunk.split('>').next().unwrap();
        let href = attribute(tag, "href").unwrap();
        assert_same_origin(&href);
        get(&server, &format!("/docs/{}", href.trim_start_matches("./"))).assert_status(200);
    }

    // The initializer fetches the document from this origin (connect-src 'self') and does
    // not send its URL to an outside validator.
    let init = get(&server, "/docs/swagger-initializer.js").text;
    assert!(init.contains("\"/openapi.json\""), "{init}");
    assert!(init.contains("\"validatorUrl\": \"none\""), "{init}");
    assert!(!init.contains("http://") && !init.contains("https://"), "{init}");
}

#[test]
fn routes_outside_the_docs_do_not_get_the_docs_policy() {
    let server = TestServer::start();
    for path in ["/openapi.json", "/healthz", "/api/jobs"] {
        let reply = get(&server, path);
        assert!(reply.header("content-security-policy").is_none(), "{path}");
    }
    // ...while the docs do (so this test fails where no policy exists at all).
    assert!(get(&server, "/docs/").header("content-security-policy").is_some());
}
