/// Size-tiered compaction (Cassandra's STCS): group tables of similar size into
/// buckets and merge a bucket once it holds `minThreshold` tables. Each byte is
/// rewritten about log_{minThreshold}(data / flush size) times.
struct SizeTiered {
    let settings: CompactionSettings

    /// Buckets of similar size, each sorted by size ascending. A table joins the first
    /// bucket whose average it is within [bucketLow, bucketHigh] of, or — when both it
    /// and the bucket's average are below `minSSTableSizeBytes` — any small bucket.
    func buckets(_ tables: [TableDescriptor]) -> [[TableDescriptor]] {
        let sorted = tables.sorted { ($0.sizeBytes, $0.id) < ($1.sizeBytes, $1.id) }
        var buckets: [[TableDescriptor]] = []
        var averages: [Double] = []
        let small = Double(settings.minSSTableSizeBytes)
        for table in sorted {
            let size = Double(table.sizeBytes)
            let fit = averages.indices.first { i in
                let average = averages[i]
                return (size >= average * settings.bucketLow && size <= average * settings.bucketHigh)
                    || (size < small && average < small)
            }
            if let i = fit {
                buckets[i].append(table)
                averages[i] += (size - averages[i]) / Double(buckets[i].count)
            } else {
                buckets.append([table])
                averages.append(size)
            }
        }
        return buckets
    }

    /// The bucket with the most tables (ties: the smallest total size) among those with
    /// at least `minThreshold`, cut to its `maxThreshold` smallest tables.
    func plan(_ tables: [TableDescriptor]) -> CompactionPlan? {
        let minimum = max(2, settings.minThreshold)
        let candidates = buckets(tables)
            .filter { $0.count >= minimum }
            .map { Array($0.prefix(max(minimum, settings.maxThreshold))) }
        func total(_ bucket: [TableDescriptor]) -> UInt64 { bucket.reduce(0) { $0 + $1.sizeBytes } }
        guard
            let best = candidates.min(by: { a, b in
                a.count != b.count ? a.count > b.count : total(a) < total(b)
            })
        else { return nil }
        return CompactionPlan(
            inputs: best.map(\.id), outputLevel: 0,
            reason: .sizeTieredBucket(averageBytes: total(best) / UInt64(best.count)))
    }
}
