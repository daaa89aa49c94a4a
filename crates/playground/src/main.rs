//! `tapegrad-playground [--host HOST] [--port PORT]`: serves the playground and prints its
//! address. Loopback only unless another host is given.

use tapegrad_playground::{Server, ServerLimits};

const USAGE: &str = "usage: tapegrad-playground [--host HOST] [--port PORT]
  --host HOST  the address to listen on (default 127.0.0.1: this machine only)
  --port PORT  the port (default 8080; 0 picks a free one)";

fn main() {
    let (mut host, mut port) = ("127.0.0.1".to_string(), 8080u16);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next().unwrap_or_else(|| {
                eprintln!("{name} needs a value\n{USAGE}");
                std::process::exit(2)
            })
        };
        match arg.as_str() {
            "--host" => host = value("--host"),
            "--port" => {
                let v = value("--port");
                port = v.parse().unwrap_or_else(|_| {
                    eprintln!("--port: `{v}` is not a port number (0-65535)\n{USAGE}");
                    std::process::exit(2)
                });
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => {
                eprintln!("unknown argument `{other}`\n{USAGE}");
                std::process::exit(2)
            }
        }
    }
    let server = match Server::start(&host, port, ServerLimits::default()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tapegrad-playground: {e}");
            std::process::exit(1)
        }
    };
    let addr = server.addr();
    if !addr.ip().is_loopback() {
        eprintln!(
            "warning: listening on {addr}, which other machines may reach; the playground has no login"
        );
    }
    println!("tapegrad playground: http://{addr}/  (Ctrl-C stops it)");
    server.wait();
}
