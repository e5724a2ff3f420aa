//! A batch's evidence as CSV, streamed: one line per activity in activity id order, read in keyset pages
//! of [`PAGE_ROWS`], each page its own short read, so memory holds one page whatever the batch's size and
//! no connection is held while the client reads.

use actix_web::web::Bytes;
use futures_util::stream::{self, Stream};

use super::store::{self, EvidenceRow};
use crate::db::Db;
use crate::error::ApiError;
use crate::secrets::SecretBox;

/// Lines per page: a page's query costs little beside its rows, and a page of CSV stays well under a
/// megabyte.
pub const PAGE_ROWS: i64 = 5_000;

/// The columns, in order.
pub const HEADER: [&str; 9] = [
    "activity_id",
    "account_hash",
    "activity_type",
    "occurred_at",
    "methodology_id",
    "methodology_version",
    "reduction_g",
    "granted_g",
    "block_height",
];

/// The CSV of `rows` (with the header first when `header`); accounts named by their pseudonyms.
pub fn render(rows: &[EvidenceRow], secrets: &SecretBox, header: bool) -> Result<Bytes, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::new());
    if header {
        out.write_record(HEADER)?;
    }
    let text = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    for row in rows {
        out.write_record([
            row.activity_id.to_string(),
            secrets.account_pseudonym(row.account_id),
            row.activity_type.clone(),
            row.occurred_at.and_utc().to_rfc3339(),
            text(row.methodology_id),
            text(row.methodology_version.map(i64::from)),
            row.reduction_g.to_string(),
            row.granted_g.to_string(),
            text(row.block_height),
        ])?;
    }
    out.into_inner()
        .map(Bytes::from)
        .map_err(|e| csv::Error::from(e.into_error()))
}

/// Where the stream is: the last activity id written, or done.
enum Next {
    After { id: i64, first: bool },
    Done,
}

/// Batch `batch_id`'s evidence, header first, page by page. A failure mid-way ends the stream with the
/// error (the client sees a cut body); the caller checked the batch before the answer started.
pub fn stream(
    db: Db,
    secrets: SecretBox,
    batch_id: i64,
) -> impl Stream<Item = Result<Bytes, actix_web::Error>> {
    stream_in_pages(db, secrets, batch_id, PAGE_ROWS)
}

/// [`stream`], `page_rows` lines per page.
pub fn stream_in_pages(
    db: Db,
    secrets: SecretBox,
    batch_id: i64,
    page_rows: i64,
) -> impl Stream<Item = Result<Bytes, actix_web::Error>> {
    let start = Next::After { id: 0, first: true };
    stream::unfold(start, move |next| {
        let (db, secrets) = (db.clone(), secrets.clone());
        async move {
            let Next::After { id, first } = next else {
                return None;
            };
            let page = db
                .run(move |conn| Ok(store::evidence_page(conn, batch_id, id, page_rows)?))
                .await;
            let answer = page.and_then(|rows| {
                let bytes = render(&rows, &secrets, first).map_err(ApiError::internal)?;
                let next = match rows.last() {
                    Some(last) if rows.len() as i64 == page_rows => Next::After {
                        id: last.activity_id,
                        first: false,
                    },
                    _ => Next::Done,
                };
                Ok((bytes, next))
            });
            Some(match answer {
                Ok((bytes, next)) => (Ok(bytes), next),
                Err(e) => {
                    tracing::error!(batch_id, error = e.log_message(), "evidence stream failed");
                    (Err(e.into()), Next::Done)
                }
            })
        }
    })
}
