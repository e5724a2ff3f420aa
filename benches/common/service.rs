//! The service as a bench drives it: started in-process.

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
