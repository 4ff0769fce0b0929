//! The unwinder std links against on Redox, which has no libunwind (packaged as the sysroot's `libgcc_eh.a`, which
//! rustc links for std programs): every `_Unwind_*` function std's `unwind` crate and its backtrace code
//! (backtrace-rs) declare for a 64-bit, non-ARM-EHABI target. Programs are built with panic=abort, so nothing ever
//! unwinds: a backtrace walks no frames, raising an exception finds no handler, resuming one aborts.
//!
//! The relibc stage checks, on every build, that each `_Unwind_*` symbol the target's std references is defined
//! here (`tasks/cookbook/unwind.py`): a newer std that needs another one fails that build with its name.
#![no_std]

use core::ffi::{c_int, c_void};

/// `_URC_FOREIGN_EXCEPTION_CAUGHT`: what an exception's cleanup is told when it is deleted.
const FOREIGN_EXCEPTION_CAUGHT: c_int = 1;
/// `_URC_END_OF_STACK`: a walk ends at once; a raised exception finds no handler.
const END_OF_STACK: c_int = 5;

type Context = c_void;
type TraceFn = extern "C" fn(*mut Context, *mut c_void) -> c_int;
type CleanupFn = extern "C" fn(c_int, *mut Exception);

/// The head of `_Unwind_Exception`: the class and the cleanup its owner set (the private words follow).
#[repr(C)]
pub struct Exception {
    _class: u64,
    cleanup: Option<CleanupFn>,
}

extern "C" {
    fn abort() -> !; // relibc's
}

#[no_mangle]
pub extern "C" fn _Unwind_Backtrace(_trace: TraceFn, _argument: *mut c_void) -> c_int {
    END_OF_STACK
}

#[no_mangle]
pub extern "C" fn _Unwind_RaiseException(_exception: *mut Exception) -> c_int {
    END_OF_STACK
}

#[no_mangle]
pub extern "C" fn _Unwind_Resume(_exception: *mut Exception) -> ! {
    unsafe { abort() }
}

/// # Safety
/// `exception` is null or points to an exception whose cleanup (if any) may be called with it.
#[no_mangle]
pub unsafe extern "C" fn _Unwind_DeleteException(exception: *mut Exception) {
    if let Some(cleanup) = unsafe { exception.as_ref() }.and_then(|head| head.cleanup) {
        cleanup(FOREIGN_EXCEPTION_CAUGHT, exception);
    }
}

#[no_mangle]
pub extern "C" fn _Unwind_GetIP(_context: *mut Context) -> usize {
    0
}

/// # Safety
/// `ip_before_insn` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn _Unwind_GetIPInfo(_context: *mut Context, ip_before_insn: *mut c_int) -> usize {
    if let Some(flag) = unsafe { ip_before_insn.as_mut() } {
        *flag = 0;
    }
    0
}

#[no_mangle]
pub extern "C" fn _Unwind_SetIP(_context: *mut Context, _value: usize) {}

#[no_mangle]
pub extern "C" fn _Unwind_GetGR(_context: *mut Context, _register: c_int) -> usize {
    0
}

#[no_mangle]
pub extern "C" fn _Unwind_SetGR(_context: *mut Context, _register: c_int, _value: usize) {}

#[no_mangle]
pub extern "C" fn _Unwind_GetCFA(_context: *mut Context) -> usize {
    0
}

#[no_mangle]
pub extern "C" fn _Unwind_FindEnclosingFunction(_pc: *mut c_void) -> *mut c_void {
    core::ptr::null_mut()
}

#[no_mangle]
pub extern "C" fn _Unwind_GetLanguageSpecificData(_context: *mut Context) -> *mut c_void {
    core::ptr::null_mut()
}

#[no_mangle]
pub extern "C" fn _Unwind_GetRegionStart(_context: *mut Context) -> usize {
    0
}

#[no_mangle]
pub extern "C" fn _Unwind_GetTextRelBase(_context: *mut Context) -> usize {
    0
}

#[no_mangle]
pub extern "C" fn _Unwind_GetDataRelBase(_context: *mut Context) -> usize {
    0
}
