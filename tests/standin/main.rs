//! The stand-in LLM server as a process, for end-to-end tests and `make demo`:
//! `standin [--port N] [--demo] [--script FILE]` prints `LISTENING http://127.0.0.1:PORT`
//! first, then serves until killed. FILE holds a JSON array of replies to queue.

#[path = "mod.rs"]
mod standin;

use std::io::Write;

use standin::{Reply, StandIn};

struct Args {
    port: u16,
    demo: bool,
    script: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 0,
        demo: false,
        script: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--port" => {
                let v = it.next().ok_or("--port needs a number")?;
                args.port = v.parse().map_err(|_| format!("--port: not a port: {v}"))?;
            }
            "--demo" => args.demo = true,
            "--script" => args.script = Some(it.next().ok_or("--script needs a file")?),
            "-h" | "--help" => {
                return Err("usage: standin [--port N] [--demo] [--script FILE]".to_string());
            }
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: standin [--port N] [--demo] [--script FILE]"
                ));
            }
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let server = match StandIn::bind(args.port).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("standin: cannot listen on 127.0.0.1:{}: {e}", args.port);
            std::process::exit(1);
        }
    };
    server.set_demo(args.demo);
    if let Some(path) = &args.script {
        let replies: Vec<Reply> = match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|s| serde_json::from_str(&s).map_err(|e| e.to_string()))
        {
            Ok(r) => r,
            Err(e) => {
                eprintln!("standin: cannot read script {path}: {e}");
                std::process::exit(2);
            }
        };
        for r in replies {
            server.push(r);
        }
    }
    println!("LISTENING {}", server.url());
    let _ = std::io::stdout().flush();
    // Serve until SIGINT / SIGTERM (or forever if signals cannot be watched).
    let _ = tokio::signal::ctrl_c().await;
}
