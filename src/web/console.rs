//! `GET /console`: the administrators' console.
//!
//! The page is public: without a session it is its sign-in form. `web/console/main.js` signs in against
//! the API (tokens kept in the page's memory only), then draws each view from the admin API, which checks
//! the session and the administrator's scope on every call. See `docs/console.md`.

use actix_web::HttpResponse;
use maud::{html, Markup};

use super::layout::{self, bilingual, Page};

/// The console's sections, in the order of its navigation: (route, Chinese, English).
const SECTIONS: &[(&str, &str, &str)] = &[
    ("methodologies", "方法学", "Methodologies"),
    ("editor", "新建草案", "New draft"),
    ("region-parameters", "地区参数", "Region parameters"),
    ("activity-types", "活动类型", "Activity types"),
    ("reviews", "审核队列", "Review queue"),
    ("partners", "合作方与数据提供方", "Partners and providers"),
    ("audit", "审计日志", "Audit log"),
];

pub async fn page() -> HttpResponse {
    layout::render(
        &Page {
            title: "碳惠管理控制台 · Tanhui console",
            styles: &["console/console.css"],
            script: Some("console/main.js"),
        },
        body(),
    )
}

fn body() -> Markup {
    html! {
        header class="console" {
            h1 { (bilingual("碳惠管理控制台", "Tanhui administrators' console")) }
            p id="who" aria-live="polite" {}
        }
        section id="signin" aria-labelledby="signin-title" {
            h2 id="signin-title" { (bilingual("登录", "Sign in")) }
            noscript { p class="problem" { "The console needs JavaScript (served from this origin only)." } }
            form id="signin-form" autocomplete="on" {
                div class="field" {
                    label for="phone" { (bilingual("手机号", "Phone")) }
                    input id="phone" name="phone" type="tel" inputmode="numeric" autocomplete="username"
                        required maxlength="11" pattern="1[3-9][0-9]{9}";
                }
                div class="field" {
                    label for="password" { (bilingual("密码", "Password")) }
                    input id="password" name="password" type="password" autocomplete="current-password"
                        required minlength="10" maxlength="128";
                }
                button type="submit" id="signin-submit" { (bilingual("登录", "Sign in")) }
                div id="signin-problem" aria-live="assertive" {}
            }
            p class="hint" {
                "Tokens stay in this page's memory only: reloading or closing the tab signs you out."
            }
        }
        div id="console" hidden {
            nav id="nav" aria-label="Console sections" {
                ul {
                    @for (route, zh, en) in SECTIONS {
                        li { a href={ "#/" (route) } data-view=(route) { (bilingual(zh, en)) } }
                    }
                }
                button type="button" id="signout" { (bilingual("退出", "Sign out")) }
            }
            main id="main" tabindex="-1" {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sign_in_form_labels_every_control() {
        let html = body().into_string();
        for id in ["phone", "password"] {
            assert!(html.contains(&format!(r#"<label for="{id}">"#)), "{id}");
        }
        assert!(!html.contains("<script") && !html.contains("style="));
    }
}
