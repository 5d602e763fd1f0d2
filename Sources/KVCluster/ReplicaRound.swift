import Synchronization

/// The meeting point of one coordinated request's replica calls: each call records its
/// outcome in the shared bookkeeping (`WriteTracker`, a read's state), and the
/// coordinator waits only until the bookkeeping has decided, not for every replica.
/// Calls that answer later still record (for hints, read repair), without a waiter.
///
/// Cost: one lock per recorded outcome; one continuation per request.
final class ReplicaRound<State: Sendable, Outcome: Sendable>: Sendable {
    private struct Guarded {
        var state: State
        var waiter: CheckedContinuation<Outcome, Never>?
        var answered = false
    }

    private let guarded: Mutex<Guarded>
    private let decide: @Sendable (State) -> Outcome?

    /// A round over `state`, decided once `decide` returns non-nil.
    init(_ state: State, decide: @escaping @Sendable (State) -> Outcome?) {
        guarded = Mutex(Guarded(state: state))
        self.decide = decide
    }

    /// Changes the state (recording an outcome) and wakes the waiter if that decided the round.
    @discardableResult
    func update<T>(_ body: (inout State) -> T) -> T {
        let (value, wake): (T, (CheckedContinuation<Outcome, Never>, Outcome)?) = guarded.withLock { g in
            let value = body(&g.state)
            guard !g.answered, let waiter = g.waiter, let outcome = decide(g.state) else { return (value, nil) }
            g.answered = true
            g.waiter = nil
            return (value, (waiter, outcome))
        }
        if let (waiter, outcome) = wake { waiter.resume(returning: outcome) }
        return value
    }

    /// The state now.
    var state: State { guarded.withLock { $0.state } }

    /// Waits until the round is decided and returns the decision.
    func wait() async -> Outcome {
        await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
            let ready: Outcome? = guarded.withLock { g in
                if let outcome = decide(g.state) {
                    g.answered = true
                    return outcome
                }
                g.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}
