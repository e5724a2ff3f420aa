//! A national administrator to onboard with, made as `tanhui admin create` makes one.

/// A national administrator, as `tanhui admin create` makes one; returns its user id.
pub fn administrator(state: &tanhui::state::AppState, conn: &mut tanhui::db::AnyConnection) -> i64 {
    let reg = tanhui::accounts::validate::validate(tanhui::accounts::validate::RegisterRequest {
        phone: format!("137{:08}", rand::random::<u32>() % 100_000_000),
        password: "bench admin password".into(),
        display_name: "bench admin".into(),
        account_type: tanhui::accounts::validate::AccountType::Individual,
        region_code: "CN".into(),
        credit_code: None,
    })
    .expect("admin");
    let hash = state.passwords.hash(&reg.password).expect("hash");
    tanhui::accounts::service::register(conn, &state.secrets, state.clock.now(), &reg, &hash, Some("CN"))
        .expect("admin")
        .user_id
}
