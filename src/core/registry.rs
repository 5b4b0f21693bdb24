//! The registry of live tasks: one entry per task (the executor's is the task's
//! address, `task::cell::LiveTask`), so that shutdown can reach tasks parked on
//! something outside the executor (a socket, a channel, a timer) and drop their
//! futures, and an abort from another thread can wake its task.
//!
//! The executor's slot is an `Option<LiveTask>`: 8 bytes (the `None` is the pointer's
//! null niche; a slot holding a `Waker` was 16 bytes and cost every task a reference
//! taken and released). Slots live in fixed chunks of 256 that never move, so growing
//! the registry never copies it (the `slab::Slab<Waker>` this replaced doubled its
//! `Vec`, copying every waker inside one unlucky spawn, 16 MiB at a million tasks, and
//! kept up to half its capacity spare). A freed key goes on a free list and is reused
//! first. Keys are `u32`, so they share a word with the queue index in the task's
//! metadata.

/// Slots per chunk: 256 of them.
const CHUNK_BITS: u32 = 8;
const CHUNK_LEN: usize = 1 << CHUNK_BITS;
const CHUNK_MASK: usize = CHUNK_LEN - 1;

/// One entry per live task, under a key the task keeps (`TaskMeta::registry_key`).
pub(crate) struct TaskRegistry<T> {
    /// Boxed arrays, not slices: a thin pointer per chunk (8 bytes per 256 tasks).
    chunks: Vec<Box<[Option<T>; CHUNK_LEN]>>,
    /// Keys whose slot is empty and below `fresh`, reused last in, first out.
    free: Vec<u32>,
    /// Keys from `fresh` on were never handed out.
    fresh: u32,
    len: usize,
}

impl<T> Default for TaskRegistry<T> {
    fn default() -> Self {
        TaskRegistry {
            chunks: Vec::new(),
            free: Vec::new(),
            fresh: 0,
            len: 0,
        }
    }
}

impl<T> TaskRegistry<T> {
    /// Hands out the key of an empty slot for [`fill`](Self::fill). `None` when all
    /// `u32::MAX` keys are in use (over 400 GiB of live tasks).
    #[inline]
    pub(crate) fn reserve(&mut self) -> Option<u32> {
        if let Some(key) = self.free.pop() {
            return Some(key);
        }
        let key = self.fresh;
        if key == u32::MAX {
            return None;
        }
        if key as usize >> CHUNK_BITS == self.chunks.len() {
            self.chunks.push(Box::new([const { None }; CHUNK_LEN]));
        }
        self.fresh = key + 1;
        Some(key)
    }

    /// Puts `entry` in the slot of `key`, which `reserve` just handed out.
    #[inline]
    pub(crate) fn fill(&mut self, key: u32, entry: T) {
        let Some(slot) = self.slot_mut(key as usize) else {
            debug_assert!(false, "key {key} was not handed out by `reserve`");
            return;
        };
        debug_assert!(slot.is_none(), "a reserved slot is empty");
        *slot = Some(entry);
        self.len += 1;
    }

    /// The entry under `key`, if the slot is filled.
    pub(crate) fn get(&self, key: usize) -> Option<&T> {
        self.chunks.get(key >> CHUNK_BITS)?[key & CHUNK_MASK].as_ref()
    }

    /// Empties the slot of `key` and frees the key; returns its entry, if it had one.
    #[inline]
    pub(crate) fn remove(&mut self, key: usize) -> Option<T> {
        let entry = self.slot_mut(key)?.take()?;
        self.len -= 1;
        // Lossless: `reserve` hands out `u32` keys only.
        self.free.push(key as u32);
        Some(entry)
    }

    /// How many slots are filled: the live tasks.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The keys of every filled slot. Stops after the chunk that holds the last one:
    /// the chunks stay allocated after a burst of tasks, and an executor dropped with
    /// no live task left (the common end) scans none of them.
    pub(crate) fn keys(&self) -> Vec<usize> {
        let mut keys = Vec::with_capacity(self.len);
        for (c, chunk) in self.chunks.iter().enumerate() {
            if keys.len() == self.len {
                break;
            }
            let filled = chunk.iter().enumerate().filter(|(_, slot)| slot.is_some());
            keys.extend(filled.map(|(i, _)| (c << CHUNK_BITS) | i));
        }
        keys
    }

    #[inline]
    fn slot_mut(&mut self, key: usize) -> Option<&mut Option<T>> {
        Some(&mut self.chunks.get_mut(key >> CHUNK_BITS)?[key & CHUNK_MASK])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    /// A waker that counts its wakes.
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn waker() -> (Arc<Counter>, Waker) {
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        (counter.clone(), Waker::from(counter))
    }

    fn insert(registry: &mut TaskRegistry<Waker>, waker: Waker) -> usize {
        let key = registry.reserve().expect("a key");
        registry.fill(key, waker);
        key as usize
    }

    #[test]
    fn an_executor_slot_is_one_pointer() {
        assert_eq!(
            std::mem::size_of::<Option<crate::task::cell::LiveTask>>(),
            8
        );
    }

    #[test]
    fn keys_cross_chunks_and_each_finds_its_own_waker() {
        let mut registry = TaskRegistry::<Waker>::default();
        let entries: Vec<_> = (0..3 * CHUNK_LEN + 5)
            .map(|_| {
                let (counter, waker) = waker();
                (insert(&mut registry, waker), counter)
            })
            .collect();
        assert_eq!(registry.len(), entries.len());
        assert_eq!(registry.chunks.len(), 4, "chunks grow one at a time");
        for (key, counter) in &entries {
            registry.get(*key).expect("filled").wake_by_ref();
            assert_eq!(counter.0.load(Ordering::Relaxed), 1, "key {key}");
        }
    }

    #[test]
    fn removed_keys_are_reused_and_removed_twice_gives_nothing() {
        let mut registry = TaskRegistry::<Waker>::default();
        let keys: Vec<usize> = (0..10).map(|_| insert(&mut registry, waker().1)).collect();
        assert!(registry.remove(keys[3]).is_some());
        assert!(registry.remove(keys[3]).is_none(), "a key is freed once");
        assert!(registry.get(keys[3]).is_none());
        assert_eq!(registry.len(), 9);
        let again = insert(&mut registry, waker().1);
        assert_eq!(again, keys[3], "the freed key comes back first");
        assert_eq!(registry.len(), 10);
        assert_eq!(registry.fresh, 10, "no fresh key was used");
    }

    #[test]
    fn keys_find_a_lone_entry_in_the_last_chunk_and_none_when_empty() {
        let mut registry = TaskRegistry::<Waker>::default();
        let keys: Vec<usize> = (0..2 * CHUNK_LEN + 1)
            .map(|_| insert(&mut registry, waker().1))
            .collect();
        let (last, others) = keys.split_last().unwrap();
        for key in others {
            registry.remove(*key);
        }
        assert_eq!(registry.keys(), [*last]);
        registry.remove(*last);
        assert!(registry.keys().is_empty());
    }

    #[test]
    fn keys_are_exactly_the_filled_slots() {
        let mut registry = TaskRegistry::<Waker>::default();
        let entries: Vec<_> = (0..CHUNK_LEN + 3)
            .map(|_| {
                let (counter, waker) = waker();
                (insert(&mut registry, waker), counter)
            })
            .collect();
        for (key, _) in entries.iter().step_by(2) {
            registry.remove(*key);
        }
        for key in registry.keys() {
            registry.get(key).expect("filled").wake_by_ref();
        }
        for (i, (_, counter)) in entries.iter().enumerate() {
            let expected = usize::from(i % 2 == 1);
            assert_eq!(counter.0.load(Ordering::Relaxed), expected, "entry {i}");
        }
    }

    #[test]
    fn unknown_keys_are_empty() {
        let mut registry = TaskRegistry::<Waker>::default();
        assert!(registry.get(0).is_none());
        assert!(registry.remove(usize::MAX).is_none());
        insert(&mut registry, waker().1);
        assert!(registry.get(CHUNK_LEN * 7).is_none());
        assert_eq!(registry.len(), 1);
    }
}
