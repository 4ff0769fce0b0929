//! `reproduce IMAGE OUTPUT SECONDS DISK_GUID FS_UUID PARTITION_GUID…`: OUTPUT is the disk image IMAGE (as the
//! installer wrote it) with nothing left to chance, so that two builds of the same inputs are byte for byte equal.
//!
//! What the installer leaves to chance, and what becomes of it here:
//! - GPT: the disk GUID and each partition's GUID are random (`Uuid::new_v4`): they become the ones given, written
//!   by the installer's own `gpt` crate (both headers, both entry arrays, their CRCs).
//! - The EFI system partition: `fatfs` stamps each directory entry with the local time: the partition is formatted
//!   again as the installer formats it (same options, same volume id) and its files written back in the same order,
//!   every time SECONDS (UTC).
//! - RedoxFS: a random UUID, node times from the clock and from the installer's scratch files, a layout that follows
//!   the host's directory order: the filesystem is created afresh (the installer's `FileSystem::create`) and the
//!   installer's tree cloned into it in name order, every time SECONDS, the UUID the one given.
//! Everything else (the protective MBR, the BIOS area, the region after the partitions) is copied as it is.
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

use fatfs::{FileSystem as Fat, FormatVolumeOptions, FsOptions, TimeProvider};
use fscommon::StreamSlice;
use redoxfs::{Disk, FileSystem, Header, Node, Transaction, TreeData, TreePtr, HEADER_RING};

use crate::{children, fail, open, read_all, sys, Partition};

const SECTOR: u64 = 512;

pub(crate) fn run(args: &[String]) -> io::Result<()> {
    let [image, output, seconds, disk_guid, fs_uuid, partition_guids @ ..] = args else {
        return Err(fail("usage: redox-image reproduce IMAGE OUTPUT SECONDS DISK_GUID FS_UUID PARTITION_GUID…".into()));
    };
    let seconds: u64 = seconds.parse().map_err(|_| fail(format!("seconds: not a number: {seconds:?}")))?;
    let guid = |text: &String| uuid::Uuid::parse_str(text).map_err(|_| fail(format!("not a GUID: {text:?}")));
    let disk_guid = guid(disk_guid)?;
    let fs_uuid = guid(fs_uuid)?;
    let partition_guids = partition_guids.iter().map(guid).collect::<io::Result<Vec<_>>>()?;

    let table = gpt::GptConfig::new().writable(false).logical_block_size(gpt::disk::LogicalBlockSize::Lb512)
        .open(image).map_err(|e| fail(format!("{image}: no GPT: {e}")))?;
    let partitions = table.partitions().clone();
    if partitions.len() != partition_guids.len() {
        return Err(fail(format!("{image}: {} partitions, {} GUIDs given", partitions.len(), partition_guids.len())));
    }
    let named = |name: &str| partitions.values().find(|part| part.name == name)
        .map(|part| (part.first_lba * SECTOR, (part.last_lba + 1) * SECTOR))
        .ok_or_else(|| fail(format!("{image}: no {name} partition")));
    let (efi, redox) = (named("EFI")?, named("REDOX")?);

    let source = File::open(image).map_err(|e| fail(format!("{image}: {e}")))?;
    let mut out = OpenOptions::new().read(true).write(true).create_new(true).open(output)
        .map_err(|e| fail(format!("{output}: {e}")))?;
    let length = source.metadata()?.len();
    out.set_len(length)?;
    // everything but the two partitions written afresh below, which stay holes (zeros) until then
    let mut position = 0;
    for (start, end) in if efi < redox { [efi, redox] } else { [redox, efi] } {
        copy_range(&source, &out, position, start)?;
        position = end;
    }
    copy_range(&source, &out, position, length)?;
    rewrite_fat(&source, &mut out, efi, seconds)?;
    clone_redoxfs(image, &out, redox, seconds, fs_uuid)?;
    out.sync_all()?;
    drop(out);

    let mut table = gpt::GptConfig::new().writable(true).logical_block_size(gpt::disk::LogicalBlockSize::Lb512)
        .open(output).map_err(|e| fail(format!("{output}: {e}")))?;
    table.update_guid(Some(disk_guid))?;
    let renamed: BTreeMap<u32, gpt::partition::Partition> = partitions.into_iter().zip(partition_guids)
        .map(|((id, part), part_guid)| (id, gpt::partition::Partition { part_guid, ..part })).collect();
    table.update_partitions(renamed)?;
    table.write()?.flush()?;
    Ok(())
}

/// Bytes [start, end) of `source` into `out` at the same place; runs of zeros stay holes.
fn copy_range(source: &File, out: &File, start: u64, end: u64) -> io::Result<()> {
    let mut buffer = vec![0u8; 1 << 20];
    let mut position = start;
    while position < end {
        let want = (end - position).min(buffer.len() as u64) as usize;
        let count = source.read_at(&mut buffer[..want], position)?;
        if count == 0 {
            break;
        }
        if buffer[..count].iter().any(|&byte| byte != 0) {
            out.write_all_at(&buffer[..count], position)?;
        }
        position += count as u64;
    }
    Ok(())
}

/// A FAT tree, in directory order.
enum FatNode {
    Dir(String, Vec<FatNode>),
    File(String, Vec<u8>),
}

fn read_fat_dir<T: fatfs::ReadWriteSeek>(dir: &fatfs::Dir<T>) -> io::Result<Vec<FatNode>> {
    let mut nodes = Vec::new();
    for entry in dir.iter() {
        let entry = entry?;
        let name = entry.file_name();
        if name == "." || name == ".." {
            continue;
        }
        if entry.is_dir() {
            nodes.push(FatNode::Dir(name, read_fat_dir(&entry.to_dir())?));
        } else {
            let mut data = Vec::new();
            entry.to_file().read_to_end(&mut data)?;
            nodes.push(FatNode::File(name, data));
        }
    }
    Ok(nodes)
}

fn write_fat_dir<T: fatfs::ReadWriteSeek>(dir: &fatfs::Dir<T>, nodes: &[FatNode]) -> io::Result<()> {
    for node in nodes {
        match node {
            FatNode::Dir(name, children) => write_fat_dir(&dir.create_dir(name)?, children)?,
            FatNode::File(name, data) => {
                let mut file = dir.create_file(name)?;
                file.truncate()?;
                file.write_all(data)?;
            }
        }
    }
    Ok(())
}

/// The one time every directory entry gets: SECONDS as a UTC date, within FAT's years (1980–2107).
#[derive(Debug)]
struct FixedTime(fatfs::DateTime);

impl FixedTime {
    fn at(seconds: u64) -> FixedTime {
        use chrono::{Datelike, Timelike};
        let least = chrono::NaiveDate::from_ymd_opt(1980, 1, 1).and_then(|day| day.and_hms_opt(0, 0, 0));
        let most = chrono::NaiveDate::from_ymd_opt(2107, 12, 31).and_then(|day| day.and_hms_opt(23, 59, 58));
        let (least, most) = (least.expect("a date"), most.expect("a date"));
        let time = i64::try_from(seconds).ok().and_then(|s| chrono::DateTime::from_timestamp(s, 0))
            .map_or(most, |time| time.naive_utc()).clamp(least, most);
        FixedTime(fatfs::DateTime {
            date: fatfs::Date { year: time.year() as u16, month: time.month() as u16, day: time.day() as u16 },
            time: fatfs::Time { hour: time.hour() as u16, min: time.minute() as u16, sec: time.second() as u16,
                                millis: 0 },
        })
    }
}

impl TimeProvider for FixedTime {
    fn get_current_date(&self) -> fatfs::Date {
        self.0.date
    }

    fn get_current_date_time(&self) -> fatfs::DateTime {
        self.0
    }
}

/// The EFI system partition [start, end) formatted again as the installer formats it, its files written back
/// (into `out`'s still empty range).
fn rewrite_fat(source: &File, out: &mut File, (start, end): (u64, u64), seconds: u64) -> io::Result<()> {
    let (tree, volume_id) = {
        let slice = StreamSlice::new(source.try_clone()?, start, end)?;
        let fat = Fat::new(slice, FsOptions::new()).map_err(|e| fail(format!("EFI partition: {e}")))?;
        let tree = read_fat_dir(&fat.root_dir())?;
        (tree, fat.volume_id())
    };
    let mut slice = StreamSlice::new(&mut *out, start, end)?;
    fatfs::format_volume(&mut slice, FormatVolumeOptions::new().volume_id(volume_id))?;
    slice.seek(SeekFrom::Start(0))?;
    // fatfs keeps the provider for the filesystem's life: one small leak per run of this tool
    let time: &'static FixedTime = Box::leak(Box::new(FixedTime::at(seconds)));
    let fat = Fat::new(slice, FsOptions::new().time_provider(time).update_accessed_date(false))?;
    write_fat_dir(&fat.root_dir(), &tree)?;
    fat.unmount()?;
    Ok(())
}

/// A new RedoxFS over the partition [start, end) of `out`, holding the tree of the one in `image`.
fn clone_redoxfs(image: &str, out: &File, (start, end): (u64, u64), seconds: u64, uuid: uuid::Uuid)
                 -> io::Result<()> {
    let mut old = open(image, start, false)?;
    let disk = Partition { file: out.try_clone()?, offset: start, size: Some(end - start), writable: true };
    let mut new = FileSystem::create(disk, None, seconds, 0).map_err(|e| sys("create RedoxFS", e))?;
    new.header.uuid = *uuid.as_bytes();  // every header from here on; the few before it are mended below
    let mut copied = 0usize;
    old.tx(|old_tx| {
        new.tx(|new_tx| {
            clone_dir(old_tx, TreePtr::root(), new_tx, TreePtr::root(), seconds, &mut copied)
                .map_err(|error| { eprintln!("redox-image: {error}"); syscall::Error::new(syscall::EIO) })?;
            new_tx.sync(true)  // squash the allocation log, as the installer does
        })?;
        Err(syscall::Error::new(syscall::error::ECANCELED))  // the old filesystem is only read
    }).or_else(|error| if error.errno == syscall::error::ECANCELED { Ok(()) } else { Err(error) })
        .map_err(|e| sys("clone RedoxFS", e))?;
    mend_ring(&mut new, uuid)
}

/// `redoxfs::clone`, with every time SECONDS and children in name order (the library's copies the installer's
/// times, which come from the clock and the scratch files, in the order the host's directory listing had).
fn clone_dir(old: &mut Transaction<Partition>, old_dir: TreePtr<Node>, new: &mut Transaction<Partition>,
             new_dir: TreePtr<Node>, seconds: u64, copied: &mut usize) -> io::Result<()> {
    let old_node = old.read_tree(old_dir).map_err(|e| sys("read", e))?;
    for (name, child) in children(old, &old_node)? {
        let data = child.data();
        let mut node: TreeData<Node> = new.create_node(new_dir, &name, data.mode(), seconds, 0)
            .map_err(|e| sys(&name, e))?;
        node.data_mut().set_uid(data.uid());
        node.data_mut().set_gid(data.gid());
        if !data.is_dir() {
            let content = read_all(old, &child)?;
            new.write_node_inner(&mut node, &mut 0, &content).map_err(|e| sys(&name, e))?;
        }
        let pointer = node.ptr();
        new.sync_tree(node).map_err(|e| sys(&name, e))?;
        *copied += 1;
        if *copied % 64 == 0 {
            new.sync(false).map_err(|e| sys("sync", e))?;  // as redoxfs::clone: bounded write cache
        }
        if data.is_dir() {
            clone_dir(old, child.ptr(), new, pointer, seconds, copied)?;
        }
    }
    Ok(())
}

/// The headers written before the UUID was set (by `FileSystem::create`) carry a random one: each is written
/// again with the UUID given, its generation and everything else as they were.
fn mend_ring(fs: &mut FileSystem<Partition>, uuid: uuid::Uuid) -> io::Result<()> {
    for slot in 0..HEADER_RING {
        let mut header = Header::default();
        unsafe { fs.disk.read_at(fs.block + slot, &mut header) }.map_err(|e| sys("read header", e))?;
        if !header.valid() || header.uuid() == *uuid.as_bytes() {
            continue;
        }
        header.uuid = *uuid.as_bytes();
        rehash(&mut header);
        if !header.valid() {
            return Err(fail(format!("RedoxFS header {slot}: not valid after its UUID changed")));
        }
        unsafe { fs.disk.write_at(fs.block + slot, &header) }.map_err(|e| sys("write header", e))?;
    }
    Ok(())
}

/// The header's hashes after an edit, as redoxfs 0.8.6 makes them for an unencrypted disk (its `update_hash` is
/// private; `Header::valid` checks the result): seahash of everything before the two hash fields, and that hash's
/// little-endian bytes, zero-padded, as the "encrypted" one.
fn rehash(header: &mut Header) {
    let end = std::mem::size_of::<Header>() - 16 - 8;
    let hash = seahash::hash(&header[..end]);
    header.hash = hash.into();
    header.encrypted_hash = [0; 16];
    header.encrypted_hash[..8].copy_from_slice(&hash.to_le_bytes());
}
