//! The yardstick: a bare tokio server that writes back every line it reads, no MCP, no JSON
//! parsing. Benchmarks drive it and a node with the same client in the same run and report the
//! ratio, so the figure says what MCP handling costs on this machine.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Echoes lines on `addr` until the process ends.
pub async fn serve(addr: SocketAddr, backlog: u32) -> anyhow::Result<()> {
    let listener = crate::tcp::bind(addr, backlog)?;
    eprintln!("baseline echo listening on {}", listener.local_addr()?);
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            // Bytes are written back as read: lines stay whole and in order.
            let mut buffer = [0u8; 4096];
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if stream.write_all(&buffer[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
}
