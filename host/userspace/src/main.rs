//! The `userspace` CNI plugin binary; everything is in the library.

fn main() -> std::process::ExitCode {
    userspace::main()
}
