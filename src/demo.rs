//! `tanhui demo`: loads a small demo world into an empty database, through the same services the API
//! uses, so every figure in it is explainable: people who earned points with metro trips, one partner
//! of each kind with an offer, a data provider, and an administrator.

use std::fmt::Write as _;

use chrono::Duration;
use diesel::prelude::*;

use crate::accounts::{service as accounts, validate};
use crate::activities::model::{Outcome, Poster};
use crate::activities::request::{self, ActivityRequest};
use crate::activities::{group, ingest};
use crate::auth::api_keys::Credentials;
use crate::db::prepared::Planning;
use crate::db::schema::users;
use crate::db::{self, AnyConnection, Tx};
use crate::domain::account::AccountType;
use crate::domain::catalog::NATION;
use crate::error::ApiError;
use crate::error::ErrorCode;
use crate::ledger::service::IssuanceAccounts;
use crate::offers::store as offers;
use crate::offers::terms::Terms;
use crate::onboarding::Onboarding;
use crate::partners::admin::{onboard, PartnerCreated};
use crate::partners::PartnerKind;
use crate::state::AppState;
use crate::{partners, providers};

pub const ADMIN_PHONE: &str = "13800000000";
pub const ADMIN_PASSWORD: &str = "demo-admin-password";
pub const USER_PASSWORD: &str = "demo-user-password";

struct Person {
    phone: &'static str,
    name: &'static str,
    region: &'static str,
    /// Metro trips of this many kilometres, one a day over the last days.
    trips_km: &'static [i64],
}

const PEOPLE: [Person; 2] = [
    Person {
        phone: "13800000001",
        name: "林小绿",
        region: "440300",
        trips_km: &[12, 15, 9, 18],
    },
    Person {
        phone: "13800000002",
        name: "王低碳",
        region: "110000",
        trips_km: &[20, 11],
    },
];

struct DemoOffer {
    partner: &'static str,
    kind: PartnerKind,
    partner_regions: &'static [&'static str],
    title: &'static str,
    description: &'static str,
    points_cost: i64,
    value_fen: Option<i64>,
    regions: &'static [&'static str],
}

const OFFERS: [DemoOffer; 3] = [
    DemoOffer {
        partner: "深圳地铁",
        kind: PartnerKind::Transit,
        partner_regions: &["440300"],
        title: "地铁一日票",
        description: "Unlimited Shenzhen metro rides for one day",
        points_cost: 300,
        value_fen: None,
        regions: &["440300"],
    },
    DemoOffer {
        partner: "黄山风景区",
        kind: PartnerKind::Scenic,
        partner_regions: &["CN"],
        title: "门票八折券",
        description: "20% off one Huangshan admission ticket",
        points_cost: 800,
        value_fen: None,
        regions: &["CN"],
    },
    DemoOffer {
        partner: "民生银行",
        kind: PartnerKind::GreenCredit,
        partner_regions: &["CN"],
        title: "碳抵贷利息抵扣",
        description: "Interest offset on a green loan: ¥2 per kg CO2e",
        points_cost: 1000,
        value_fen: Some(200),
        regions: &["CN"],
    },
];

/// What the demo created, for the guide printed afterwards.
pub struct World {
    pub partners: Vec<(String, PartnerCreated)>,
    pub provider: Credentials,
    pub offer_ids: Vec<i64>,
    pub points: Vec<i64>,
    /// The crowd behind the dashboard: people, and their activities credited or capped.
    pub crowd: (usize, usize),
}

/// Where the crowd lives, and how many of them: east, central and west (the study's three belts), so the
/// public dashboard has something to compare.
const CROWD: [(&str, usize); 14] = [
    ("440300", 6),
    ("440100", 4),
    ("310000", 4),
    ("330100", 3),
    ("110000", 3),
    ("370200", 2),
    ("420100", 5),
    ("410100", 3),
    ("430000", 3),
    ("340000", 2),
    ("510100", 5),
    ("500000", 3),
    ("610000", 2),
    ("530000", 2),
];

/// Days back the crowd's activities go.
const CROWD_DAYS: i64 = 120;

/// Loads the demo world; refuses when the database already has users.
pub fn load(state: &AppState) -> Result<World, ApiError> {
    let mut conn = state.db.get()?;
    let existing: i64 = users::table.count().get_result(&mut conn)?;
    if existing > 0 {
        return Err(ApiError::conflict(
            ErrorCode::NotEmpty,
            format!("the database already has {existing} users; the demo loads only into an empty database"),
        ));
    }
    let admin_id = register(
        state,
        &mut conn,
        ADMIN_PHONE,
        "Demo admin",
        "CN",
        ADMIN_PASSWORD,
        Some(NATION),
    )?
    .0;
    let mut points = Vec::new();
    for person in &PEOPLE {
        let (user_id, account_id) = register(
            state,
            &mut conn,
            person.phone,
            person.name,
            person.region,
            USER_PASSWORD,
            None,
        )?;
        points.push(earn(state, &mut conn, person, user_id, account_id)?);
    }
    let mut partners_made = Vec::new();
    let mut offer_ids = Vec::new();
    for offer in &OFFERS {
        let (created, offer_id) = open_partner_offer(state, &mut conn, admin_id, offer)?;
        partners_made.push((offer.partner.to_string(), created));
        offer_ids.push(offer_id);
    }
    let bikes = Onboarding {
        name: "美团单车".into(),
        kind: "bikeshare".into(),
        region_codes: vec!["CN".into()],
        code: None,
    };
    bikes.validate(&providers::PROVIDER_KINDS, false, &state.catalog.get())?;
    let provider = providers::register(
        &mut conn,
        &state.secrets,
        admin_id,
        &bikes,
        state.clock.now_naive(),
    )?;
    let crowd = crowd(state, &mut conn)?;
    Ok(World {
        partners: partners_made,
        provider,
        offer_ids,
        points,
        crowd,
    })
}

/// Vouchers each demo offer has in stock: more than a demo's visitors will take.
const OFFER_STOCK: i64 = 1000;
/// Vouchers of one offer a person may hold: two, so the limit can be seen at the third.
const OFFER_PER_USER_LIMIT: i64 = 2;
/// Days the demo offers stay open: the demo outlives any session with it.
const OFFER_OPEN_DAYS: i64 = 365;

/// Onboards the offer's partner and opens its offer in one transaction; returns the partner and the offer id.
fn open_partner_offer(
    state: &AppState,
    conn: &mut AnyConnection,
    admin_id: i64,
    offer: &DemoOffer,
) -> Result<(PartnerCreated, i64), ApiError> {
    let catalog = state.catalog.get();
    let onboarding = Onboarding {
        name: offer.partner.into(),
        kind: offer.kind.as_str().into(),
        region_codes: offer.partner_regions.iter().map(|r| r.to_string()).collect(),
        code: None,
    };
    onboarding.validate(&partners::PARTNER_KINDS, true, &catalog)?;
    let start = state.clock.now_naive();
    let terms = Terms {
        title: offer.title.into(),
        description: offer.description.into(),
        points_cost: offer.points_cost,
        value_fen: offer.value_fen,
        stock: OFFER_STOCK,
        per_user_limit: OFFER_PER_USER_LIMIT,
        valid_from: start - Duration::days(1),
        valid_to: start + Duration::days(OFFER_OPEN_DAYS),
        region_codes: offer.regions.iter().map(|r| r.to_string()).collect(),
        residents_only: false,
    };
    let errors = terms.errors(offer.kind, &onboarding.region_codes, &catalog);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    db::transaction(conn, Tx::Write, |conn| {
        let created = onboard(conn, state, admin_id, &onboarding)?;
        let partner_id: i64 = created.partner_id.parse().map_err(ApiError::internal)?;
        let offer_id = offers::insert(conn, partner_id, &terms, start)?;
        Ok((created, offer_id))
    })
}

fn register(
    state: &AppState,
    conn: &mut AnyConnection,
    phone: &str,
    name: &str,
    region: &str,
    password: &str,
    governs: Option<&str>,
) -> Result<(i64, i64), ApiError> {
    let reg = validate::validate(validate::RegisterRequest {
        phone: phone.into(),
        password: password.into(),
        display_name: name.into(),
        account_type: AccountType::Individual,
        region_code: region.into(),
        credit_code: None,
    })
    .map_err(ApiError::validation)?;
    let hash = state.passwords.hash(&reg.password).map_err(ApiError::internal)?;
    let created = accounts::register(conn, &state.secrets, state.clock.now(), &reg, &hash, governs)?;
    Ok((created.user_id, created.account_id))
}

/// Posts the person's metro trips (with a GPS trace) through ingestion; returns the points earned.
fn earn(
    state: &AppState,
    conn: &mut AnyConnection,
    person: &Person,
    user_id: i64,
    account_id: i64,
) -> Result<i64, ApiError> {
    let catalog = state.catalog.get();
    let mut earned = 0;
    for (day, km) in person.trips_km.iter().enumerate() {
        let start = state.clock.now() - Duration::days(day as i64 + 1);
        let trip: ActivityRequest = serde_json::from_value(serde_json::json!({
            "client_event_id": format!("demo-trip-{day}"),
            "activity_type": "transit.metro",
            "occurred_at": start.to_rfc3339(),
            "ended_at": (start + Duration::minutes(km * 2 + 10)).to_rfc3339(),
            "evidence": "trace",
            "data": {"distance_m": km * 1000},
        }))
        .map_err(ApiError::internal)?;
        let poster = Poster {
            user_id,
            account_id,
            home_region: person.region.into(),
            provider_id: None,
            operator_code: None,
        };
        let digest = request::digest(&trip)?;
        let event = request::validate(
            trip,
            digest,
            poster,
            &catalog,
            state.clock.now(),
            &state.settings.activities,
        )?;
        let mut cx = ingest::Context {
            settings: &state.settings.activities,
            catalog: &catalog,
            issuance: &mut IssuanceAccounts::default(),
            now: state.clock.now_naive(),
            planning: Planning::EachTime,
        };
        let outcome = group::ingest_alone(conn, &mut cx, &event)?;
        if let Outcome::Created(result) = outcome {
            earned += result.points;
        }
    }
    Ok(earned)
}

/// A small deterministic generator (xorshift64*): the same demo every time, no dependency.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `[low, high]`.
    fn between(&mut self, low: i64, high: i64) -> i64 {
        let span = u64::try_from(high - low + 1).unwrap_or(1).max(1);
        low + i64::try_from(self.next() % span).unwrap_or(0)
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: i64) -> bool {
        self.between(0, 99) < percent
    }
}

/// Registers the crowd and posts their last months of metro rides, walks and bike rides through
/// ingestion, a day per group commit, each day's events validated as if posted that evening (so none is
/// late); returns (people, activities counted). More people are active in recent weeks than months ago.
fn crowd(state: &AppState, conn: &mut AnyConnection) -> Result<(usize, usize), ApiError> {
    let mut people: Vec<Poster> = Vec::new();
    for (region, count) in CROWD {
        for _ in 0..count {
            let phone = format!("1380001{:04}", people.len());
            let name = format!("绿友{:02}", people.len() + 1);
            let (user_id, account_id) = register(state, conn, &phone, &name, region, USER_PASSWORD, None)?;
            people.push(Poster {
                user_id,
                account_id,
                home_region: region.into(),
                provider_id: None,
                operator_code: None,
            });
        }
    }
    people.sort_by_key(|p| p.account_id);
    let catalog = state.catalog.get();
    let mut dice = Dice(0x7461_6e68_7569_2026);
    let mut counted = 0;
    for days_ago in (1..=CROWD_DAYS).rev() {
        let day = (state.clock.now() + Duration::hours(8)).date_naive() - Duration::days(days_ago);
        let local = |hour: i64, minute: i64| {
            day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc() - Duration::hours(8)
                + Duration::minutes(hour * 60 + minute)
        };
        let posted = local(23, 0);
        let active_percent = 25 + 35 * (CROWD_DAYS - days_ago) / CROWD_DAYS;
        let mut events = Vec::new();
        for person in &people {
            if !dice.chance(active_percent) {
                continue;
            }
            for (slot, trip) in day_of_trips(&mut dice).into_iter().enumerate() {
                let (activity_type, start_minute, minutes, data) = trip;
                let start = local(0, start_minute);
                let request: ActivityRequest = serde_json::from_value(serde_json::json!({
                    "client_event_id": format!("demo-{day}-{slot}"),
                    "activity_type": activity_type,
                    "occurred_at": start.to_rfc3339(),
                    "ended_at": (start + Duration::minutes(minutes)).to_rfc3339(),
                    "evidence": "trace",
                    "data": data,
                }))
                .map_err(ApiError::internal)?;
                let digest = request::digest(&request)?;
                events.push(request::validate(
                    request,
                    digest,
                    person.clone(),
                    &catalog,
                    posted,
                    &state.settings.activities,
                )?);
            }
        }
        let mut cx = ingest::Context {
            settings: &state.settings.activities,
            catalog: &catalog,
            issuance: &mut IssuanceAccounts::default(),
            now: posted.naive_utc(),
            planning: Planning::EachTime,
        };
        let group: Vec<&crate::activities::model::Event> = events.iter().collect();
        let answers = db::transaction(conn, Tx::Write, |conn| group::ingest_group(conn, &mut cx, &group))?;
        counted += answers
            .into_iter()
            .filter(|a| matches!(a, Ok(Outcome::Created(r)) if r.status.is_counted()))
            .count();
    }
    Ok((people.len(), counted))
}

/// One person's trips on an active day: (type, start in minutes after local midnight, minutes, data).
fn day_of_trips(dice: &mut Dice) -> Vec<(&'static str, i64, i64, serde_json::Value)> {
    let mut trips = Vec::new();
    if dice.chance(80) {
        let km = dice.between(4, 25);
        trips.push((
            "transit.metro",
            7 * 60 + dice.between(0, 90),
            km * 2 + 10,
            serde_json::json!({"distance_m": km * 1000, "count": 1}),
        ));
    }
    if dice.chance(45) {
        let km = dice.between(1, 5);
        trips.push((
            "walking",
            12 * 60,
            km * 15,
            serde_json::json!({"distance_m": km * 1000}),
        ));
    }
    if dice.chance(35) {
        let km = dice.between(1, 6);
        trips.push((
            "cycling.bikeshare",
            18 * 60 + dice.between(0, 60),
            km * 4,
            serde_json::json!({"distance_m": km * 1000}),
        ));
    }
    trips
}

/// The guide printed after loading: who is who, and five commands to earn and redeem.
pub fn guide(world: &World, base_url: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Demo world loaded.\n");
    let _ = writeln!(
        out,
        "Administrator: phone {ADMIN_PHONE}, password {ADMIN_PASSWORD}"
    );
    for (person, points) in PEOPLE.iter().zip(&world.points) {
        let _ = writeln!(
            out,
            "User {} ({}): phone {}, password {USER_PASSWORD}, {points} points from metro trips",
            person.name, person.region, person.phone
        );
    }
    let (people, activities) = world.crowd;
    let _ = writeln!(
        out,
        "{activities} activities of {people} more people in east, central and west China over the last \
         {CROWD_DAYS} days: see {base_url}/dashboard (phones 13800010000…, password {USER_PASSWORD})"
    );
    let _ = writeln!(
        out,
        "\nPartners (sign their calls with these; the secrets are shown only now):"
    );
    for ((name, p), offer_id) in world.partners.iter().zip(&world.offer_ids) {
        let _ = writeln!(
            out,
            "  {name}: partner_id {} key_id {} secret {} (offer {offer_id})",
            p.partner_id, p.key_id, p.secret
        );
    }
    let _ = writeln!(
        out,
        "Data provider 美团单车: key_id {} secret {}",
        world.provider.key_id, world.provider.secret
    );
    let offer = world.offer_ids.first().copied().unwrap_or(1);
    let _ = writeln!(
        out,
        r#"
Try it (with the server running: cargo run):
  1. Sign in:  TOKEN=$(curl -s {base_url}/api/v1/auth/login -H 'content-type: application/json' \
                 -d '{{"phone":"{phone}","password":"{USER_PASSWORD}"}}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
  2. Wallet:   curl -s {base_url}/api/v1/wallet -H "Authorization: Bearer $TOKEN"
  3. Offers:   curl -s '{base_url}/api/v1/offers?region_code=440300'
  4. Redeem:   curl -s {base_url}/api/v1/redemptions -H "Authorization: Bearer $TOKEN" -H 'Idempotency-Key: demo-1' \
                 -H 'content-type: application/json' -d '{{"offer_id":"{offer}"}}'
  5. Vouchers: curl -s {base_url}/api/v1/redemptions -H "Authorization: Bearer $TOKEN"
The voucher verifies offline against {base_url}/.well-known/jwks.json; the partner captures it with a
signed POST /api/v1/partner/vouchers/redeem (see README, "Partner calls")."#,
        phone = PEOPLE[0].phone,
    );
    out
}
