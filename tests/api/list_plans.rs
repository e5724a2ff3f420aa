//! Every list that pages by keyset walks an index in its own order and stops after a page: its plan,
//! asked of the backend for the very query the endpoint runs, names the index and sorts nothing. A
//! missing or mismatched index fails here instead of making the 1,000th page slower than the first.

use tanhui::activities::store as activities;
use tanhui::audit::{self, AuditEntity};
use tanhui::db::plan::{explain, ListQuery};
use tanhui::db::AnyConnection;
use tanhui::ledger::store::{self as ledger, Side};
use tanhui::offers::store as offers;
use tanhui::redemptions::store::{self as redemptions, Owner, RedemptionStatus};

use crate::both_backends;
use crate::helpers::{now, TestApp};

both_backends!(every_list_walks_its_index_without_sorting);

/// How a list's plan must read: the index it walks (PostgreSQL's name), and SQLite's words for the
/// same step (`INDEX name`, or the table's name for a walk of its own key).
struct Expect {
    list: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

fn check<T, Q: ListQuery<T>>(conn: &mut AnyConnection, expect: &Expect, query: Q) {
    let plan = explain(conn, query).unwrap();
    let text = plan.join("\n");
    let context = format!("{}: plan\n{text}", expect.list);
    match conn {
        AnyConnection::Sqlite(_) => {
            // A whole word: `INDEX redemptions_partner` is not `INDEX redemptions_partner_status`.
            let names = |step: &String| {
                step.ends_with(expect.sqlite) || step.contains(&format!("{} ", expect.sqlite))
            };
            assert!(
                plan.iter().any(names),
                "{context}\ndoes not use {}",
                expect.sqlite
            );
            assert!(!text.contains("TEMP B-TREE"), "{context}\nsorts");
        }
        AnyConnection::Postgresql(_) => {
            let walks = plan.iter().any(|line| {
                line.contains("Index") && line.contains(&format!("using {} ", expect.postgres))
                    || line.ends_with(&format!("using {}", expect.postgres))
            });
            assert!(walks, "{context}\ndoes not walk {}", expect.postgres);
            assert!(!text.contains("Sort"), "{context}\nsorts");
            assert!(!text.contains("Seq Scan"), "{context}\nreads a table whole");
        }
    }
}

async fn every_list_walks_its_index_without_sorting(app: TestApp) {
    app.with_conn(|conn| {
        // The first page and a deep one (below a cursor) of each list.
        for before in [None, Some(1_000_000)] {
            let limit = 51;
            let e = |list, sqlite, postgres| Expect {
                list,
                sqlite,
                postgres,
            };
            check(
                conn,
                &e("activities", "INDEX activities_account", "activities_account"),
                activities::list_for_account_query(7, before, limit),
            );
            check(
                conn,
                &e(
                    "wallet transfers (debits)",
                    "INDEX transfers_debit",
                    "transfers_debit",
                ),
                ledger::account_side_query(Side::Debit, 7, before, limit),
            );
            check(
                conn,
                &e(
                    "wallet transfers (credits)",
                    "INDEX transfers_credit",
                    "transfers_credit",
                ),
                ledger::account_side_query(Side::Credit, 7, before, limit),
            );
            check(
                conn,
                &e("redemptions", "INDEX redemptions_account", "redemptions_account"),
                redemptions::list_query(Owner::Account(7), before, limit),
            );
            check(
                conn,
                &e(
                    "partner redemptions",
                    "INDEX redemptions_partner",
                    "redemptions_partner",
                ),
                redemptions::list_query(Owner::Partner { id: 7, status: None }, before, limit),
            );
            let held = Owner::Partner {
                id: 7,
                status: Some(RedemptionStatus::Held),
            };
            check(
                conn,
                &e(
                    "partner redemptions by status",
                    "INDEX redemptions_partner_status",
                    "redemptions_partner_status",
                ),
                redemptions::list_query(held, before, limit),
            );
            check(
                conn,
                &e("review queue", "INDEX activities_flagged", "activities_flagged"),
                activities::list_flagged_query(&activities::QueueFilter::default(), before, limit),
            );
            let partner_offers = offers::Filter {
                kind: None,
                regions: None,
                partner_id: Some(7),
            };
            check(
                conn,
                &e("partner offers", "INDEX offers_partner", "offers_partner"),
                offers::list_query(&partner_offers, now(), before, limit),
            );
            let everything = audit::Search::default();
            check(
                conn,
                &e("audit", "audit_log", "audit_log_pkey"),
                audit::list_query(&everything, before, limit),
            );
            let by_actor = audit::Search {
                actor_user_id: Some(7),
                ..Default::default()
            };
            check(
                conn,
                &e("audit by actor", "INDEX audit_log_actor", "audit_log_actor"),
                audit::list_query(&by_actor, before, limit),
            );
            let by_entity = audit::Search {
                entity: Some(AuditEntity::Partner),
                entity_id: Some("7".into()),
                ..Default::default()
            };
            check(
                conn,
                &e("audit by entity", "INDEX audit_log_entity", "audit_log_entity"),
                audit::list_query(&by_entity, before, limit),
            );
        }
    })
    .await;
}
