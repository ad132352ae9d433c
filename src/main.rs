fn main() -> std::process::ExitCode {
    microbatch::cli::main()
}
