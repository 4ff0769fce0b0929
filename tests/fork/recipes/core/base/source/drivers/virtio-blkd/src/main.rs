//! The fixture's block driver: a `no_std`, `no_main` userspace program, entered through crt0's `_start` and libc's
//! `relibc_start` and linked against the sysroot's libc.a, whose `relibc_fixture_sum` it calls.
#![no_std]
#![no_main]

#[link(name = "c")]
extern "C" {
    fn relibc_fixture_sum(first: i32, second: i32) -> i32;
}

#[no_mangle]
pub extern "C" fn main(argc: isize, _argv: *const *const u8) -> i32 {
    unsafe { relibc_fixture_sum(argc as i32, 1) }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
