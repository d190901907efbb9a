//! The `ward` binary: everything is in the library ([`ward::main`]).

fn main() -> std::process::ExitCode {
    ward::main()
}
