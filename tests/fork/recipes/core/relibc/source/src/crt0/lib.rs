//! The program entry point `_start`: hands the initial stack pointer to libc's `relibc_start`.
#![no_std]

core::arch::global_asm!(
    ".section .text._start, \"ax\"",
    ".global _start",
    "_start:",
    "    mov x0, sp",
    "    bl relibc_start",
);

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
