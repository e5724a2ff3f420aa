//! Pooled reductions (docs/registry.md): credited activities of a region subtree and a window, packaged
//! as a batch that goes draft ▸ submitted ▸ verified ▸ issued, each activity in one batch ever (the
//! database's primary key on the activity), issued as whole tonnes under gapless serial numbers, with
//! its evidence exportable as CSV; then sold, and settled by paying its proceeds to the people whose
//! activities it holds (`sale`), or retired for a beneficiary instead (`retire`).

pub mod check;
pub mod draft;
pub mod evidence;
pub mod handlers;
pub mod payouts;
pub mod retire;
pub mod sale;
pub mod serials;
pub mod service;
pub mod shares;
pub mod store;
pub mod views;
