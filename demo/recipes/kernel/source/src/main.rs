//! Stands in for the kernel ELF in the demo image; it is a host program and never boots anything.

fn main() {
    println!("demo kernel placeholder: the real kernel is built from the fork's source with Cranelift");
}
