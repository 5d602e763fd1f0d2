/// Why a hint was not stored (each is counted by the shell; the write itself still succeeds).
public enum HintDropReason: Hashable, Sendable {
    /// The target already has `limit` hints waiting (`HintSettings.maxHintsPerTarget`).
    case targetQueueFull(limit: Int)
    /// The target has been down longer than the hint window: hinting it further would
    /// keep writes it cannot use; anti-entropy repair brings it up to date instead.
    case targetDownTooLong(downForMillis: UInt64, windowMillis: UInt64)
}

/// The rules of hinted handoff, without the storage: whether to keep a new hint,
/// which stored hints have expired, and what to deliver next. The `HintDeliveryWorker`
/// shell owns the durable queue and calls these.
public struct HintPolicy: Sendable, Equatable {
    /// Window, per-target bound and batch size.
    public let settings: HintSettings

    public init(settings: HintSettings = .init()) {
        self.settings = settings
    }

    /// Whether to store a hint for a target with `queued` hints waiting that has been
    /// down since `targetDownSinceMillis` (nil: not known to be down, e.g. it timed out).
    /// Returns nil to store, or why the hint is dropped. O(1).
    public func dropReason(queued: Int, targetDownSinceMillis: UInt64?, nowMillis: UInt64) -> HintDropReason? {
        if queued >= settings.maxHintsPerTarget { return .targetQueueFull(limit: settings.maxHintsPerTarget) }
        if let since = targetDownSinceMillis, nowMillis > since, nowMillis - since > settings.windowMillis {
            return .targetDownTooLong(downForMillis: nowMillis - since, windowMillis: settings.windowMillis)
        }
        return nil
    }

    /// True when a hint written at `createdAtMillis` is older than the hint window and
    /// must be dropped instead of delivered.
    public func isExpired(createdAtMillis: UInt64, nowMillis: UInt64) -> Bool {
        nowMillis > createdAtMillis && nowMillis - createdAtMillis > settings.windowMillis
    }

    /// Splits the head of a target's queue (oldest first, as stored) into the hints to
    /// drop as expired and the next batch to deliver, in order: expired hints are
    /// dropped wherever they are, and the batch holds at most `deliveryBatchSize` live
    /// ones. O(looked-at hints).
    public func nextBatch<Hint>(
        from queue: some Sequence<Hint>, createdAt: (Hint) -> UInt64, nowMillis: UInt64
    ) -> (expired: [Hint], deliver: [Hint]) {
        var expired: [Hint] = []
        var deliver: [Hint] = []
        for hint in queue {
            if isExpired(createdAtMillis: createdAt(hint), nowMillis: nowMillis) {
                expired.append(hint)
            } else {
                deliver.append(hint)
                if deliver.count == settings.deliveryBatchSize { break }
            }
        }
        return (expired, deliver)
    }
}
