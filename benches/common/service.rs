//! The service as a bench drives it: started in-process, and a national administrator to onboard with.

use tanhui::config::Settings;

/// Starts the server on its own actix system thread; returns its base URL.
pub fn start(settings: Settings) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let app = tanhui::startup::Application::build(settings)
                .await
                .expect("start");
            tx.send(app.port()).expect("port");
            app.run_until_stopped().await.expect("serve");
        })
    });
    format!("http://127.0.0.1:{}", rx.recv().expect("server port"))
}

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
