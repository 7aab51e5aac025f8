import Synchronization

/// The BPE model of a byte-level tokenizer: vocabulary, ranked merges and the merge loop.
///
/// Tokens are keyed by the raw bytes they stand for (their ByteLevel spelling decoded), so the
/// hot path hashes short byte arrays instead of non-ASCII `String`s; the ByteLevel table is a
/// bijection, so this is the same map as HF's string-keyed one for every token BPE can reach.
final class BPEModel: Sendable {
    struct Merge: Sendable {
        let rank: Int32
        let newID: Int32
    }

    /// Raw bytes → id, for every vocabulary token spelled only with ByteLevel stand-ins.
    let idsByBytes: [[UInt8]: Int32]
    /// Id of each single byte's token, -1 where the vocabulary lacks it.
    let byteIDs: [Int32]
    /// `(left id << 32) | right id` → rank (line order in the merges list) and merged token id.
    let merges: [UInt64: Merge]
    let unknownID: Int32?
    let fuseUnknown: Bool
    /// When set, a word that is itself in the vocabulary is emitted whole, without merging.
    let ignoreMerges: Bool

    private let cache = Mutex<[[UInt8]: [Int32]]>([:])
    static let cacheCapacity = 10_000
    /// Longer words are not cached (as in HF: they are rare and would crowd the cache).
    static let cacheMaxWordBytes = 256

    init(
        idsByBytes: [[UInt8]: Int32], merges: [UInt64: Merge], unknownID: Int32?, fuseUnknown: Bool,
        ignoreMerges: Bool
    ) {
        self.idsByBytes = idsByBytes
        self.merges = merges
        self.unknownID = unknownID
        self.fuseUnknown = fuseUnknown
        self.ignoreMerges = ignoreMerges
        byteIDs = (0..<256).map { idsByBytes[[UInt8($0)]] ?? -1 }
    }

    static func pairKey(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    /// Appends the ids of one pre-tokenized word.
    /// - Parameter word: the word's raw UTF-8 bytes (one ByteLevel character each).
    func tokenize(_ word: ArraySlice<UInt8>, into ids: inout [Int]) {
        if word.isEmpty { return }
        if ignoreMerges, let id = idsByBytes[Array(word)] {
            ids.append(Int(id))
            return
        }
        if word.count == 1, byteIDs[Int(word.first!)] >= 0 {
            ids.append(Int(byteIDs[Int(word.first!)]))
            return
        }
        let cacheable = word.count < Self.cacheMaxWordBytes
        let key = Array(word)
        if cacheable, let hit = cache.withLock({ $0[key] }) {
            ids.append(contentsOf: hit.lazy.map { Int($0) })
            return
        }
        let merged = mergeWord(word)
        ids.append(contentsOf: merged.lazy.map { Int($0) })
        if cacheable {
            cache.withLock { cache in
                if cache.count < Self.cacheCapacity { cache[key] = merged }
            }
        }
    }

    private struct Symbol {
        var id: Int32
        var prev: Int
        var next: Int
        var removed: Bool
    }

    /// The merge loop of HF `tokenizers` (`Word::merge_all` in `tokenizers/src/models/bpe/word.rs`,
    /// huggingface/tokenizers@3ba8ad00), ported step for step so ties and stale queue entries
    /// resolve identically: repeatedly apply the lowest-rank merge, the leftmost on equal ranks;
    /// an entry is stale when the pair now at its position no longer merges into its token.
    func mergeWord(_ word: ArraySlice<UInt8>) -> [Int32] {
        // Symbols: one per byte. A byte missing from the vocabulary becomes the unknown token
        // (fused with its neighbours when `fuse_unk`), or is dropped when there is none — what
        // `BPE::merge_word` does; byte-level vocabularies hold all 256 bytes, so neither happens.
        var symbols: [Symbol] = []
        symbols.reserveCapacity(word.count)
        var pendingUnknown = false
        func add(_ id: Int32) {
            symbols.append(
                Symbol(id: id, prev: symbols.count - 1, next: symbols.count + 1, removed: false))
        }
        for byte in word {
            let id = byteIDs[Int(byte)]
            if id >= 0 {
                if pendingUnknown, let unknownID { add(unknownID) }
                pendingUnknown = false
                add(id)
            } else if let unknownID {
                if pendingUnknown && !fuseUnknown { add(unknownID) }
                pendingUnknown = true
            }
        }
        if pendingUnknown, let unknownID { add(unknownID) }
        guard symbols.count > 1 else { return symbols.map(\.id) }
        symbols[symbols.count - 1].next = -1

        var queue = MergeQueue()
        for position in 0..<(symbols.count - 1) {
            if let merge = merges[Self.pairKey(symbols[position].id, symbols[position + 1].id)] {
                queue.push(.init(rank: merge.rank, position: position, newID: merge.newID))
            }
        }
        while let top = queue.pop() {
            let left = top.position
            if symbols[left].removed || symbols[left].next == -1 { continue }
            let right = symbols[left].next
            guard let merge = merges[Self.pairKey(symbols[left].id, symbols[right].id)],
                merge.newID == top.newID
            else { continue }  // stale entry

            symbols[left].id = top.newID
            symbols[left].next = symbols[right].next
            symbols[right].removed = true
            if symbols[right].next >= 0 { symbols[symbols[right].next].prev = left }

            let prev = symbols[left].prev
            if prev >= 0, let merge = merges[Self.pairKey(symbols[prev].id, symbols[left].id)] {
                queue.push(.init(rank: merge.rank, position: prev, newID: merge.newID))
            }
            let next = symbols[left].next
            if next >= 0, let merge = merges[Self.pairKey(symbols[left].id, symbols[next].id)] {
                queue.push(.init(rank: merge.rank, position: left, newID: merge.newID))
            }
        }
        return symbols.filter { !$0.removed }.map(\.id)
    }
}

/// Binary min-heap of candidate merges ordered by (rank, position).
struct MergeQueue {
    struct Entry {
        let rank: Int32
        let position: Int
        let newID: Int32

        func precedes(_ other: Entry) -> Bool {
            rank != other.rank ? rank < other.rank : position < other.position
        }
    }

    private var heap: [Entry] = []

    mutating func push(_ entry: Entry) {
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Entry? {
        guard let first = heap.first else { return nil }
        let last = heap.removeLast()
        if heap.isEmpty { return first }
        heap[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var best = parent
            if left < heap.count, heap[left].precedes(heap[best]) { best = left }
            if right < heap.count, heap[right].precedes(heap[best]) { best = right }
            if best == parent { break }
            heap.swapAt(parent, best)
            parent = best
        }
        return first
    }
}
