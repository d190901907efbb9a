//! Work that must not be abandoned half-way: [`shielded`] runs it on its own
//! thread so that Ctrl-C becomes a cancel the work notices (it restarts the
//! container or puts the safety snapshot back before ward exits), and
//! [`fault`] lets the tests fail or kill ward at an exact point of it.

use anyhow::Result;

/// A fault-injection point for the tests (`WARD_FAULT=<point>`, or several
/// separated by commas); each fires once per process (so a rollback through
/// the same code path succeeds); inert without the variable.
/// `<point>:kill` kills the process there with SIGKILL instead (a kill -9 at
/// an exact point: nothing is cleaned up); `<point>:sleep` pauses there for
/// three seconds (time for a test to pull a server from under it);
/// `<point>:hold` pauses there until the file named by `WARD_FAULT_RELEASE`
/// exists (at most two minutes), so a test can act while ward is held at
/// the point and then let it go — no guessing how long to sleep.
pub(crate) fn fault(point: &str) -> Result<()> {
    static FIRED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let Ok(wanted) = std::env::var("WARD_FAULT") else {
        return Ok(());
    };
    for w in wanted.split(',') {
        if w.strip_suffix(":kill") == Some(point) {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
        if w.strip_suffix(":sleep") == Some(point) {
            std::thread::sleep(std::time::Duration::from_secs(3));
        }
        if w.strip_suffix(":hold") == Some(point) {
            hold_until_released();
        }
        if w == point {
            let mut fired = FIRED.lock().unwrap_or_else(|e| e.into_inner());
            if !fired.iter().any(|f| f == point) {
                fired.push(point.to_string());
                anyhow::bail!("injected fault at {point} (WARD_FAULT)");
            }
        }
    }
    Ok(())
}

/// Waits for the file `WARD_FAULT_RELEASE` names, bounded (a test that
/// forgets to release it fails on its own assertions, not by a hang).
fn hold_until_released() {
    let Some(release) = std::env::var_os("WARD_FAULT_RELEASE") else {
        return;
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !std::path::Path::new(&release).exists() && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Runs `work` on its own thread and runtime; if the caller is dropped (Ctrl-C),
/// the work is told to cancel and the drop waits until it has cleaned up.
pub(crate) async fn shielded<T, F, Fut>(work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T>>,
{
    struct JoinOnDrop(Option<std::thread::JoinHandle<()>>);
    impl Drop for JoinOnDrop {
        fn drop(&mut self) {
            if let Some(h) = self.0.take() {
                if !h.is_finished() {
                    crate::error::cancel();
                }
                let _ = h.join();
            }
        }
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build();
        let result = match rt {
            Ok(rt) => rt.block_on(work()),
            Err(e) => Err(anyhow::anyhow!("cannot start a runtime: {e}")),
        };
        let _ = tx.send(result);
    });
    let mut guard = JoinOnDrop(Some(handle));
    let result = rx
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the snapshot worker thread panicked")));
    if let Some(h) = guard.0.take() {
        let _ = h.join();
    }
    result
}
