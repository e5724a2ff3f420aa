//! `GET /dashboard`: the public regional dashboard.
//!
//! The server renders the structure, the window selector (a plain GET form) and every download link;
//! `web/dashboard/dashboard.js` reads the statistics API and draws the numbers and SVG charts.

use actix_web::web;
use actix_web::HttpResponse;
use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{self, bilingual, Page};
use crate::state::AppState;

/// The public statistics endpoint the page reads (API.md, "Statistics, dashboard, console").
const STATS_API: &str = "/api/v1/public/stats/reductions";

/// The windows a visitor can pick. Days are Asia/Shanghai days, as the statistics count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    Days30,
    Days90,
    Months12,
    YearToDate,
}

impl Window {
    const ALL: [Window; 4] = [
        Window::Days30,
        Window::Days90,
        Window::Months12,
        Window::YearToDate,
    ];

    fn parse(value: Option<&str>) -> Window {
        Window::ALL
            .into_iter()
            .find(|w| Some(w.code()) == value)
            .unwrap_or(Window::Days30)
    }

    fn code(self) -> &'static str {
        match self {
            Window::Days30 => "30d",
            Window::Days90 => "90d",
            Window::Months12 => "12m",
            Window::YearToDate => "ytd",
        }
    }

    fn label(self) -> (&'static str, &'static str) {
        match self {
            Window::Days30 => ("近 30 天", "Last 30 days"),
            Window::Days90 => ("近 90 天", "Last 90 days"),
            Window::Months12 => ("近 12 个月", "Last 12 months"),
            Window::YearToDate => ("今年以来", "Year to date"),
        }
    }

    /// The half-open window ending with today (local) and the time series' step.
    fn bounds(self, now: DateTime<Utc>) -> Bounds {
        let tz = shanghai();
        let today = now.with_timezone(&tz).date_naive();
        let end = today + Duration::days(1);
        let (start, series) = match self {
            Window::Days30 => (end - Duration::days(30), "day"),
            Window::Days90 => (end - Duration::days(90), "day"),
            Window::Months12 => (months_before(first_of_month(today), 11), "month"),
            Window::YearToDate => (
                NaiveDate::from_ymd_opt(today.year(), 1, 1).unwrap_or(today),
                "month",
            ),
        };
        Bounds {
            from: local_midnight(start),
            to: local_midnight(end),
            series,
        }
    }
}

struct Bounds {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    /// `day` or `month`: the time series' `group_by`.
    series: &'static str,
}

impl Bounds {
    /// The statistics API's URL for one grouping over this window.
    fn api(&self, group_by: &str) -> String {
        format!(
            "{STATS_API}?group_by={group_by}&from={}&to={}",
            rfc3339(self.from),
            rfc3339(self.to)
        )
    }
}

fn shanghai() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

fn local_midnight(day: NaiveDate) -> DateTime<Utc> {
    shanghai()
        .from_local_datetime(&day.and_time(chrono::NaiveTime::MIN))
        .single()
        .expect("a fixed offset has one local midnight")
        .with_timezone(&Utc)
}

fn first_of_month(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

fn months_before(first: NaiveDate, months: u32) -> NaiveDate {
    first
        .checked_sub_months(chrono::Months::new(months))
        .unwrap_or(first)
}

/// `Z` rather than `+00:00`, so the URL needs no escaping.
fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[derive(Deserialize)]
pub(super) struct Query {
    window: Option<String>,
}

pub(super) async fn page(state: web::Data<AppState>, query: web::Query<Query>) -> HttpResponse {
    let window = Window::parse(query.window.as_deref());
    let bounds = window.bounds(state.clock.now());
    let page = Page {
        title: "碳惠数据看板 · Tanhui dashboard",
        styles: &["dashboard/dashboard.css"],
        script: Some("dashboard/dashboard.js"),
    };
    layout::render(&page, body(window, &bounds))
}

fn body(window: Window, bounds: &Bounds) -> Markup {
    html! {
        header class="site" {
            h1 { "碳惠 · 低碳行动看板 " span class="en" lang="en" { "Tanhui · Low-carbon action dashboard" } }
            p class="lead" {
                "各地居民的低碳出行与减排，按东部、中部、西部比较。"
                span class="en" lang="en" { " Low-carbon actions and the reductions they earned, compared across China's east, central and west." }
            }
            form class="window" method="get" action="/dashboard" {
                label for="window" { (bilingual("时间范围", "Window")) }
                select id="window" name="window" {
                    @for option in Window::ALL {
                        @let (zh, en) = option.label();
                        option value=(option.code()) selected[option == window] { (zh) " · " (en) }
                    }
                }
                button type="submit" { (bilingual("查看", "Show")) }
            }
        }
        main id="main" data-api=(STATS_API) data-from=(rfc3339(bounds.from)) data-to=(rfc3339(bounds.to))
            data-series=(bounds.series) {
            p class="status" id="status" role="status" aria-live="polite" {
                noscript { "图表需要 JavaScript；下方链接可下载数据。 " span class="en" lang="en" { "Charts need JavaScript; the links below download the data." } }
            }
            section class="overview" aria-labelledby="overview-heading" {
                h2 id="overview-heading" class="visually-hidden" { (bilingual("总览", "Overview")) }
                dl class="totals" id="totals" {}
            }
            (section("regions", "东部、中部、西部", "East, central and west", "macro_region", bounds, html! {
                div class="pair" {
                    figure id="regions-total" class="chart" {}
                    figure id="regions-per-capita" class="chart" {}
                }
            }))
            (section("provinces", "省份排名", "Provinces ranked", "province", bounds, html! {
                figure id="provinces-chart" class="chart" {}
            }))
            (section("types", "活动类型", "Activity types", "activity_type", bounds, html! {
                figure id="types-chart" class="chart" {}
            }))
            (section("series", if bounds.series == "day" { "逐日趋势" } else { "逐月趋势" },
                if bounds.series == "day" { "By day" } else { "By month" }, bounds.series, bounds, html! {
                figure id="series-chart" class="chart" {}
            }))
        }
        footer class="site" {
            p {
                "人口：2020 年第七次全国人口普查。人均 = 核定减排克数 ÷ 常住人口。"
                span class="en" lang="en" { " Population: 2020 census. Per capita = granted grams ÷ residents." }
            }
            p { a href="/api/v1/openapi.json" { (bilingual("接口说明", "API reference")) } }
        }
    }
}

/// One dashboard section: a heading, its content, and the CSV of the rows it draws.
fn section(id: &str, zh: &str, en: &str, group_by: &str, bounds: &Bounds, content: Markup) -> Markup {
    let heading = format!("{id}-heading");
    html! {
        section id=(id) class="panel" aria-labelledby=(heading) data-group=(group_by) {
            h2 id=(heading) { (bilingual(zh, en)) }
            (content)
            p class="download" {
                // Without the script this link reads the JSON: a link cannot ask for text/csv.
                a class="csv" href=(bounds.api(group_by)) data-group=(group_by)
                    data-filename=(format!("tanhui-{group_by}.csv")) {
                    (bilingual("下载 CSV", "Download CSV"))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn windows_end_with_the_local_day() {
        // 2026-12-07 01:00 in Shanghai is still 2026-12-06 in UTC.
        let now = at("2026-12-06T17:00:00Z");
        let b = Window::Days30.bounds(now);
        assert_eq!(rfc3339(b.to), "2026-12-07T16:00:00Z");
        assert_eq!(rfc3339(b.from), "2026-11-07T16:00:00Z");
        assert_eq!(b.series, "day");
        let b = Window::Months12.bounds(now);
        assert_eq!(rfc3339(b.from), "2025-12-31T16:00:00Z");
        assert_eq!(b.series, "month");
        let b = Window::YearToDate.bounds(now);
        assert_eq!(rfc3339(b.from), "2025-12-31T16:00:00Z");
    }

    #[test]
    fn an_unknown_window_is_the_default() {
        assert_eq!(Window::parse(Some("<script>")), Window::Days30);
        assert_eq!(Window::parse(Some("90d")), Window::Days90);
    }

    #[test]
    fn every_section_links_its_csv() {
        let b = Window::Days30.bounds(at("2026-12-06T17:00:00Z"));
        let html = body(Window::Days30, &b).into_string();
        for group in ["macro_region", "province", "activity_type", "day"] {
            assert!(html.contains(&format!("group_by={group}&amp;from=")), "{group}");
        }
    }
}
