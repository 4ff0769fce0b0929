//! The fixture kernel: entered at `_start` (the linker script's entry), it sets up a stack, allows FP/SIMD at EL1,
//! prints one line on QEMU `virt`'s PL011 UART and waits for interrupts forever.
#![no_std]
#![no_main]

use core::arch::{asm, global_asm};
use core::ptr::write_volatile;

global_asm!(
    ".section .text._start, \"ax\"",
    ".global _start",
    "_start:",
    "    ldr x0, =__stack_top",
    "    mov sp, x0",
    "    mov x0, #(3 << 20)", // CPACR_EL1.FPEN: FP and SIMD do not trap at EL1
    "    msr cpacr_el1, x0",
    "    isb",
    "    bl kmain",
    "1:  wfe",
    "    b 1b",
);

const UART_DATA: *mut u8 = 0x0900_0000 as *mut u8;
pub const LINE: &[u8] = b"fixture kernel: hello from aarch64\n";

#[no_mangle]
extern "C" fn kmain() -> ! {
    for &byte in LINE {
        unsafe { write_volatile(UART_DATA, byte) };
    }
    loop {
        unsafe { asm!("wfe") };
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
