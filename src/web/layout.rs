//! The HTML shell every page shares: head, embedded styles and script, skip link, and bilingual labels.

use actix_web::http::header;
use actix_web::HttpResponse;
use maud::{html, Markup, DOCTYPE};

use super::assets;

/// What a page adds to the shared shell. Asset paths are relative to `web/` (see [`assets::url`]).
pub struct Page<'a> {
    /// The document title, Chinese first: `"碳惠数据看板 · Tanhui dashboard"`.
    pub title: &'a str,
    /// Stylesheets after `shared/base.css`.
    pub styles: &'a [&'a str],
    /// The page's ES module, if it has one (loaded deferred, as every module is).
    pub script: Option<&'a str>,
}

/// A full HTML page: the shell around `body`, answered 200 and never cached (its asset URLs change
/// with every build).
pub fn render(page: &Page, body: Markup) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(document(page, body).into_string())
}

fn document(page: &Page, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (page.title) }
                link rel="icon" type="image/svg+xml" href=(assets::url("shared/icon.svg"));
                link rel="stylesheet" href=(assets::url("shared/base.css"));
                @for style in page.styles {
                    link rel="stylesheet" href=(assets::url(style));
                }
                @if let Some(script) = page.script {
                    script type="module" src=(assets::url(script)) {}
                }
            }
            body {
                a class="skip" href="#main" { "跳到正文 " span lang="en" { "Skip to content" } }
                (body)
            }
        }
    }
}

/// A label in Chinese followed by its English, the English marked as such for screen readers.
pub fn bilingual(zh: &str, en: &str) -> Markup {
    html! { (zh) " " span class="en" lang="en" { (en) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_escapes_the_title_and_has_no_inline_script() {
        let page = Page {
            title: "<b>&",
            styles: &[],
            script: Some("shared/dom.js"),
        };
        let html = document(&page, html! { p { "x" } }).into_string();
        assert!(html.contains("<title>&lt;b&gt;&amp;</title>"), "{html}");
        assert!(html.contains(r#"<script type="module" src="/assets/"#));
        assert!(!html.contains("<script>"));
        assert!(!html.contains("style="));
    }
}
