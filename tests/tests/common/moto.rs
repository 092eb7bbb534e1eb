//! moto's server (`moto[server]`, which `scripts/test` installs into
//! `.pydeps-moto`): an AWS implementation nobody here wrote, for S3,
//! CloudFormation, Lambda, DynamoDB, IAM and SQS. Each test starts its own
//! on a free loopback port, and it is stopped by PID when the test ends,
//! failed or not.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server, stopped on drop.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    /// Start one; fails the test, saying how to get moto, when it is not installed.
    pub fn start() -> Moto {
        let path = std::env::var("TASK_TEST_MOTO_PYTHONPATH")
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../.pydeps-moto").to_owned());
        assert!(
            std::path::Path::new(&path).join("moto").is_dir(),
            "moto is not installed at {path}: run the suite with `scripts/test` (it installs moto[server] 5.2.6 there), \
             or `python3 -m pip install --target .pydeps-moto 'moto[server]==5.2.6'`"
        );
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port");
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .env("PYTHONPATH", &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto's server (python3)");
        let moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto's server did not listen on port {port} within 60 s");
            std::thread::sleep(Duration::from_millis(200));
        }
        moto
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
