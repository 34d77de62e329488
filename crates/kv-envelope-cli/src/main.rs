//! `kv-envelope`: the ops command line for the types kv-envelope ships. Applications register
//! their own types in a `main` just like this one (see `kv_envelope_cli`).

fn main() -> std::process::ExitCode {
    kv_envelope_cli::run(kv_envelope_cli::Registry::with_shipped())
}
