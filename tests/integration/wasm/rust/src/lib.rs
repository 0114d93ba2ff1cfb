//! What the Rust SDK's http_headers and http_config examples document, in one filter:
//! `GET /hello` is answered by the plugin (200, `Hello, World!\n`, headers hello: World and
//! powered-by: proxy-wasm) without reaching the upstream; every other response gets the
//! header custom-header: <plugin configuration> when there is one; `on_log` counts completed
//! streams in the counter rust_filter_completed.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType};
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root { header: Rc::new(String::new()), completed: 0 })
    });
}}

struct Root {
    header: Rc<String>,
    completed: u32,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _: usize) -> bool {
        if let Some(config) = self.get_plugin_configuration() {
            self.header = Rc::new(String::from_utf8_lossy(&config).into_owned());
        }
        self.completed = proxy_wasm::hostcalls::define_metric(MetricType::Counter, "rust_filter_completed")
            .unwrap_or(0);
        true
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream { id: context_id, header: self.header.clone(), completed: self.completed }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream {
    id: u32,
    header: Rc<String>,
    completed: u32,
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        for (name, value) in &self.get_http_request_headers() {
            log::info!("#{} -> {}: {}", self.id, name, value);
        }
        match self.get_http_request_header(":path") {
            Some(path) if path == "/hello" => {
                self.send_http_response(
                    200,
                    vec![("Hello", "World"), ("Powered-By", "proxy-wasm")],
                    Some(b"Hello, World!\n"),
                );
                Action::Pause
            }
            _ => Action::Continue,
        }
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        if !self.header.is_empty() {
            self.set_http_response_header("custom-header", Some(&self.header));
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        log::info!("#{} completed.", self.id);
        let _ = proxy_wasm::hostcalls::increment_metric(self.completed, 1);
    }
}
