/// Leveled compaction (LevelDB/RocksDB style). L0 holds flushed tables, which may
/// overlap; every level ≥ 1 is a set of tables with disjoint token spans whose total
/// size targets `level1MaxBytes × levelSizeRatio^(level-1)`. Reads touch at most one
/// table per level ≥ 1; each byte is rewritten ≈ ratio times per level.
struct Leveled {
    let settings: CompactionSettings

    func targetBytes(level: Int) -> Double {
        var bytes = Double(settings.level1MaxBytes)
        for _ in 1..<max(1, level) { bytes *= Double(settings.levelSizeRatio) }
        return bytes
    }

    func plan(_ tables: [TableDescriptor], busy: Set<UInt64>) -> CompactionPlan? {
        let levels = Dictionary(grouping: tables, by: \.level)
        // 1. L0 → L1 when L0 has enough tables: all idle L0 tables plus every L1 table
        //    overlapping their combined span (so L1 stays disjoint).
        let level0 = (levels[0] ?? []).filter { !busy.contains($0.id) }
            .sorted { ($0.createdAtMillis, $0.id) < ($1.createdAtMillis, $1.id) }
        if level0.count >= max(1, settings.level0CompactionTrigger) {
            let chosen = Array(level0.prefix(max(settings.level0CompactionTrigger, settings.maxThreshold)))
            let span = chosen.map(\.minToken).min()!...chosen.map(\.maxToken).max()!
            let next = (levels[1] ?? []).filter { $0.overlaps(span) }
            if next.allSatisfy({ !busy.contains($0.id) }) {
                return CompactionPlan(
                    inputs: chosen.map(\.id) + next.map(\.id), outputLevel: 1,
                    reason: .level0Full(tables: level0.count))
            }
        }
        // 2. The level ≥ 1 most over its target: one table (the one overlapping the fewest
        //    bytes below, relative to its size) plus the tables it overlaps one level down.
        let scored = (1..<max(1, settings.maxLevel)).compactMap { level -> (Int, Double)? in
            let bytes = (levels[level] ?? []).reduce(0.0) { $0 + Double($1.sizeBytes) }
            let score = bytes / targetBytes(level: level)
            return score >= 1 ? (level, score) : nil
        }.sorted { $0.1 > $1.1 }
        for (level, score) in scored {
            let below = levels[level + 1] ?? []
            let options = (levels[level] ?? []).filter { !busy.contains($0.id) }.compactMap {
                table -> (TableDescriptor, [TableDescriptor], Double)? in
                let overlapping = below.filter { $0.overlaps(table.tokens) }
                guard overlapping.allSatisfy({ !busy.contains($0.id) }) else { return nil }
                let overlapBytes = overlapping.reduce(0.0) { $0 + Double($1.sizeBytes) }
                return (table, overlapping, overlapBytes / Double(max(1, table.sizeBytes)))
            }
            guard let best = options.min(by: { ($0.2, $0.0.minToken) < ($1.2, $1.0.minToken) }) else { continue }
            return CompactionPlan(
                inputs: [best.0.id] + best.1.map(\.id), outputLevel: level + 1,
                reason: .levelOversized(level: level, score: score))
        }
        return nil
    }
}
