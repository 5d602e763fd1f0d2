/// Something that wants a call when its event loop finishes the current batch of jobs, just
/// before the loop polls for I/O again (`EventLoop.atEndOfTurn`). The hook for coalescing:
/// a connection gathers every write made during one turn and sends them with one syscall.
public protocol LoopTurnHandler: AnyObject {
    /// The loop finished its batch of jobs; called on the loop thread, once per `atEndOfTurn`.
    func loopTurnEnded()
}
