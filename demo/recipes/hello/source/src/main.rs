//! The demo image's own program.

fn main() {
    println!("Hello from the demo image of the pure-Rust aarch64 Redox build!");
}
