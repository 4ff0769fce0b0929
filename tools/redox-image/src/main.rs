//! redox-image IMAGE OFFSET COMMAND ARGS…: the files inside the RedoxFS partition that starts OFFSET bytes into
//! IMAGE (a GPT disk image, or 0 for a bare RedoxFS image), through the redoxfs crate itself: no FUSE, no root.
//!
//! Reading (the image is opened read-only: nothing is written, not even an access time):
//!   ls PATH | tree PATH | cat PATH | get PATH DEST | stat PATH
//!   extract PATH DEST   the tree below PATH into the new host directory DEST: modes exact, owners when root
//! Writing (one transaction, committed at the end; the caller works on a copy and renames it into place):
//!   apply   operations from standard input, one per line, fields separated by tabs:
//!           put SRC PATH MODE UID GID | mkdir PATH MODE UID GID | symlink TARGET PATH UID GID
//!           rm PATH | chmod MODE PATH | chown UID GID PATH
//! MODE is octal permission bits. Lines printed by ls/tree/stat: KIND MODE UID GID SIZE MTIME PATH [-> TARGET].
//!
//! redox-image reproduce IMAGE OUTPUT SECONDS DISK_GUID FS_UUID PARTITION_GUID…: OUTPUT is IMAGE made
//! reproducible (see reproduce.rs): the GUIDs and the RedoxFS UUID given, every time SECONDS.
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::process::ExitCode;

use redoxfs::{Disk, FileSystem, Node, Transaction, TreeData, TreePtr, BLOCK_SIZE};
use syscall::error::{Error, Result as SysResult, ECANCELED, EIO, EROFS};

mod reproduce;

/// The RedoxFS partition: block N of the file system is at OFFSET + N × 4096 in the image.
pub(crate) struct Partition {
    file: File,
    offset: u64,
    size: Option<u64>,  // the partition's size; None: up to the end of the file
    writable: bool,
}

impl Disk for Partition {
    unsafe fn read_at(&mut self, block: u64, buffer: &mut [u8]) -> SysResult<usize> {
        self.file.read_at(buffer, self.offset + block * BLOCK_SIZE).map_err(|_| Error::new(EIO))
    }

    unsafe fn write_at(&mut self, block: u64, buffer: &[u8]) -> SysResult<usize> {
        if !self.writable {
            return Err(Error::new(EROFS));
        }
        self.file.write_at(buffer, self.offset + block * BLOCK_SIZE).map_err(|_| Error::new(EIO))
    }

    fn size(&mut self) -> SysResult<u64> {
        match self.size {
            Some(size) => Ok(size),
            None => Ok(self.file.metadata().map_err(|_| Error::new(EIO))?.len().saturating_sub(self.offset)),
        }
    }
}

pub(crate) fn fail(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::Other, message)
}

pub(crate) fn sys(what: &str, error: Error) -> io::Error {
    fail(format!("{what}: {}", io::Error::from_raw_os_error(error.errno)))
}

fn components(path: &str) -> Vec<&str> {
    path.split('/').filter(|part| !part.is_empty() && *part != ".").collect()
}

fn find(tx: &mut Transaction<Partition>, path: &str) -> io::Result<TreeData<Node>> {
    let mut node = tx.read_tree(TreePtr::root()).map_err(|e| sys("/", e))?;
    for part in components(path) {
        if part == ".." {
            return Err(fail(format!("{path}: '..' is not allowed")));
        }
        node = tx.find_node(node.ptr(), part).map_err(|e| sys(path, e))?;
    }
    Ok(node)
}

fn parent_and_name<'p>(tx: &mut Transaction<Partition>, path: &'p str) -> io::Result<(TreePtr<Node>, &'p str)> {
    let parts = components(path);
    let (name, parents) = parts.split_last().ok_or_else(|| fail(format!("{path}: not a path below /")))?;
    if parts.contains(&"..") {
        return Err(fail(format!("{path}: '..' is not allowed")));
    }
    let parent_path = format!("/{}", parents.join("/"));
    let parent = find(tx, &parent_path).map_err(|_| fail(format!("{path}: no directory {parent_path}")))?;
    if !parent.data().is_dir() {
        return Err(fail(format!("{path}: its parent is not a directory")));
    }
    Ok((parent.ptr(), name))
}

fn read_all(tx: &mut Transaction<Partition>, node: &TreeData<Node>) -> io::Result<Vec<u8>> {
    let mut data = vec![0; node.data().size() as usize];
    let mut done = 0;
    while done < data.len() {
        let count = tx.read_node_inner(node, done as u64, &mut data[done..]).map_err(|e| sys("read", e))?;
        if count == 0 {
            break;
        }
        done += count;
    }
    data.truncate(done);
    Ok(data)
}

fn kind(node: &Node) -> char {
    if node.is_dir() {
        'd'
    } else if node.is_symlink() {
        'l'
    } else {
        'f'
    }
}

fn describe(tx: &mut Transaction<Partition>, node: &TreeData<Node>, path: &str) -> io::Result<String> {
    let data = node.data();
    let mut line = format!("{}\t{:04o}\t{}\t{}\t{}\t{}\t{}", kind(data), data.mode() & Node::MODE_PERM, data.uid(),
                           data.gid(), data.size(), data.mtime().0, path);
    if data.is_symlink() {
        line += &format!("\t-> {}", String::from_utf8_lossy(&read_all(tx, node)?));
    }
    Ok(line)
}

fn children(tx: &mut Transaction<Partition>, node: &TreeData<Node>) -> io::Result<Vec<(String, TreeData<Node>)>> {
    let mut entries = Vec::new();
    tx.child_nodes(node.ptr(), &mut entries).map_err(|e| sys("list", e))?;
    let mut result = Vec::new();
    for entry in entries {
        if let Some(name) = entry.name() {
            let child = tx.read_tree(entry.node_ptr()).map_err(|e| sys(name, e))?;
            result.push((name.to_string(), child));
        }
    }
    result.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(result)
}

fn tree(tx: &mut Transaction<Partition>, node: &TreeData<Node>, path: &str, out: &mut impl Write)
        -> io::Result<()> {
    for (name, child) in children(tx, node)? {
        let child_path = if path == "/" { format!("/{name}") } else { format!("{path}/{name}") };
        writeln!(out, "{}", describe(tx, &child, &child_path)?)?;
        if child.data().is_dir() {
            tree(tx, &child, &child_path, out)?;
        }
    }
    Ok(())
}

fn extract(tx: &mut Transaction<Partition>, node: &TreeData<Node>, dest: &std::path::Path) -> io::Result<()> {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let data = node.data();
    if data.is_dir() {
        std::fs::create_dir(dest).map_err(|e| fail(format!("{}: {e}", dest.display())))?;
        for (name, child) in children(tx, node)? {
            extract(tx, &child, &dest.join(name))?;
        }
    } else if data.is_symlink() {
        let target = read_all(tx, node)?;
        symlink(std::ffi::OsStr::from_bytes(&target), dest).map_err(|e| fail(format!("{}: {e}", dest.display())))?;
    } else {
        std::fs::write(dest, read_all(tx, node)?).map_err(|e| fail(format!("{}: {e}", dest.display())))?;
    }
    // Owners as the image has them where this process may give them (root); otherwise the files are ours.
    let _ = std::os::unix::fs::lchown(dest, Some(data.uid()), Some(data.gid()));
    if !data.is_symlink() {
        // After the owner (chown clears set-id bits); set-id bits are never given to host files at all.
        let mode = u32::from(data.mode() & Node::MODE_PERM) & !0o6000;
        std::fs::set_permissions(dest, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

fn number(text: &str, radix: u32, what: &str) -> io::Result<u32> {
    u32::from_str_radix(text, radix).map_err(|_| fail(format!("{what}: not a number: {text:?}")))
}

fn mode_and_owner(mode: &str, uid: &str, gid: &str) -> io::Result<(u16, u32, u32)> {
    Ok((number(mode, 8, "mode")? as u16, number(uid, 10, "uid")?, number(gid, 10, "gid")?))
}

fn set_owner(tx: &mut Transaction<Partition>, mut node: TreeData<Node>, uid: u32, gid: u32) -> io::Result<()> {
    node.data_mut().set_uid(uid);
    node.data_mut().set_gid(gid);
    tx.sync_tree(node).map_err(|e| sys("chown", e))
}

fn create(tx: &mut Transaction<Partition>, path: &str, mode: u16, uid: u32, gid: u32, now: u64)
          -> io::Result<TreeData<Node>> {
    let (parent, name) = parent_and_name(tx, path)?;
    let node = tx.create_node(parent, name, mode, now, 0).map_err(|e| sys(path, e))?;
    let ptr = node.ptr();
    set_owner(tx, node, uid, gid)?;
    tx.read_tree(ptr).map_err(|e| sys(path, e))
}

fn remove(tx: &mut Transaction<Partition>, path: &str) -> io::Result<()> {
    let node = find(tx, path)?;
    if node.data().is_dir() {
        for (name, _) in children(tx, &node)? {
            remove(tx, &format!("{path}/{name}"))?;
        }
    }
    let mode = node.data().mode() & Node::MODE_TYPE;
    let (parent, name) = parent_and_name(tx, path)?;
    tx.remove_node(parent, name, mode).map_err(|e| sys(path, e))?;
    Ok(())
}

fn apply(tx: &mut Transaction<Partition>, line: &str, now: u64) -> io::Result<()> {
    let fields: Vec<&str> = line.split('\t').collect();
    match fields.as_slice() {
        ["put", source, path, mode, uid, gid] => {
            let data = std::fs::read(source).map_err(|e| fail(format!("{source}: {e}")))?;
            let (mode, uid, gid) = mode_and_owner(mode, uid, gid)?;
            let file_mode = Node::MODE_FILE | (mode & Node::MODE_PERM);
            let ptr = match find(tx, path) {
                Ok(node) if node.data().is_file() => {
                    tx.truncate_node(node.ptr(), 0, now, 0).map_err(|e| sys(path, e))?;
                    node.ptr()
                }
                Ok(_) => {
                    remove(tx, path)?;
                    create(tx, path, file_mode, uid, gid, now)?.ptr()
                }
                Err(_) => create(tx, path, file_mode, uid, gid, now)?.ptr(),
            };
            let mut node = tx.read_tree(ptr).map_err(|e| sys(path, e))?;
            node.data_mut().set_mode(file_mode);
            set_owner(tx, node, uid, gid)?;
            let written = tx.write_node(ptr, 0, &data, now, 0).map_err(|e| sys(path, e))?;
            if written != data.len() {
                return Err(fail(format!("{path}: wrote {written} of {} bytes", data.len())));
            }
        }
        ["mkdir", path, mode, uid, gid] => {
            let (mode, uid, gid) = mode_and_owner(mode, uid, gid)?;
            match find(tx, path) {
                Ok(node) if node.data().is_dir() => {}
                Ok(_) => return Err(fail(format!("{path}: exists and is not a directory"))),
                Err(_) => {
                    create(tx, path, Node::MODE_DIR | (mode & Node::MODE_PERM), uid, gid, now)?;
                }
            }
        }
        ["symlink", target, path, uid, gid] => {
            if find(tx, path).is_ok() {
                remove(tx, path)?;
            }
            let node = create(tx, path, Node::MODE_SYMLINK | 0o777, number(uid, 10, "uid")?,
                              number(gid, 10, "gid")?, now)?;
            tx.write_node(node.ptr(), 0, target.as_bytes(), now, 0).map_err(|e| sys(path, e))?;
        }
        ["rm", path] => remove(tx, path)?,
        ["chmod", mode, path] => {
            let mode = number(mode, 8, "mode")? as u16;
            let mut node = find(tx, path)?;
            let kind = node.data().mode() & Node::MODE_TYPE;
            node.data_mut().set_mode(kind | (mode & Node::MODE_PERM));
            tx.sync_tree(node).map_err(|e| sys(path, e))?;
        }
        ["chown", uid, gid, path] => {
            let node = find(tx, path)?;
            set_owner(tx, node, number(uid, 10, "uid")?, number(gid, 10, "gid")?)?;
        }
        _ => return Err(fail(format!("not an operation: {line:?}"))),
    }
    Ok(())
}

pub(crate) fn open(image: &str, offset: u64, writable: bool) -> io::Result<FileSystem<Partition>> {
    let file = OpenOptions::new().read(true).write(writable).open(image).map_err(|e| fail(format!("{image}: {e}")))?;
    let disk = Partition { file, offset, size: None, writable };
    // cleanup=false: opening must not squash the allocation log (it would write)
    FileSystem::open(disk, None, None, false).map_err(|e| sys(&format!("{image}: no RedoxFS at offset {offset}"), e))
}

fn run(args: &[String]) -> io::Result<()> {
    let [image, offset, command, rest @ ..] = args else {
        return Err(fail("usage: redox-image IMAGE OFFSET (ls|tree|cat|get|stat|apply) ARGS…".into()));
    };
    let offset: u64 = offset.parse().map_err(|_| fail(format!("offset: not a number: {offset:?}")))?;
    let writable = command == "apply";
    let mut fs = open(image, offset, writable)?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut outcome: io::Result<()> = Ok(());
    let now = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    });
    let result = fs.tx(|tx| {
        outcome = (|| -> io::Result<()> {
            match (command.as_str(), rest) {
                ("ls", [path]) => {
                    let node = find(tx, path)?;
                    if node.data().is_dir() {
                        for (name, child) in children(tx, &node)? {
                            writeln!(out, "{}", describe(tx, &child, &name)?)?;
                        }
                    } else {
                        writeln!(out, "{}", describe(tx, &node, path)?)?;
                    }
                }
                ("stat", [path]) => {
                    let node = find(tx, path)?;
                    writeln!(out, "{}", describe(tx, &node, path)?)?;
                }
                ("tree", [path]) => {
                    let node = find(tx, path)?;
                    tree(tx, &node, if components(path).is_empty() { "/" } else { path }, &mut out)?;
                }
                ("cat", [path]) => {
                    let node = find(tx, path)?;
                    if !node.data().is_file() {
                        return Err(fail(format!("{path}: not a file")));
                    }
                    out.write_all(&read_all(tx, &node)?)?;
                }
                ("get", [path, dest]) => {
                    let node = find(tx, path)?;
                    if !node.data().is_file() {
                        return Err(fail(format!("{path}: not a file")));
                    }
                    std::fs::write(dest, read_all(tx, &node)?).map_err(|e| fail(format!("{dest}: {e}")))?;
                }
                ("extract", [path, dest]) => {
                    let node = find(tx, path)?;
                    extract(tx, &node, std::path::Path::new(dest))?;
                }
                ("apply", []) => {
                    for line in io::stdin().lock().lines() {
                        let line = line?;
                        if !line.is_empty() {
                            apply(tx, &line, now)?;
                        }
                    }
                    tx.sync(true).map_err(|e| sys("commit", e))?;
                }
                _ => return Err(fail(format!("{command}: unknown command or wrong arguments"))),
            }
            Ok(())
        })();
        // Only a writing command that worked commits. A reading one, or a failure, ends the transaction here
        // (ECANCELED): nothing is written (and a failed write's image, a copy, is thrown away by the caller).
        if outcome.is_ok() && writable { Ok(()) } else { Err(Error::new(ECANCELED)) }
    });
    outcome?;
    match result {
        Err(error) if error.errno == ECANCELED => Ok(()),
        other => other.map_err(|e| sys("commit", e)),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.split_first() {
        Some((command, rest)) if command == "reproduce" => reproduce::run(rest),
        _ => run(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("redox-image: {error}");
            ExitCode::FAILURE
        }
    }
}
