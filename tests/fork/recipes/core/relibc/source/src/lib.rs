//! The fixture's libc: the start routine crt0's `_start` calls, and one function the programs link against.
#![no_std]

extern "C" {
    fn main(argc: isize, argv: *const *const u8) -> i32;
}

/// What a program's `main` returned, kept where a debugger finds it (the fixture has no exit system call).
#[no_mangle]
pub static mut EXIT_STATUS: i32 = 0;

/// Called by crt0's `_start` with the initial stack pointer (argc, then argv), as relibc's `relibc_start` is.
#[no_mangle]
pub unsafe extern "C" fn relibc_start(stack: *const isize) -> ! {
    let argc = *stack;
    EXIT_STATUS = main(argc, stack.add(1).cast());
    loop {
        core::arch::asm!("wfe");
    }
}

/// A libc function the programs call: what links them against this library.
#[no_mangle]
pub extern "C" fn relibc_fixture_sum(first: i32, second: i32) -> i32 {
    first.wrapping_add(second)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
