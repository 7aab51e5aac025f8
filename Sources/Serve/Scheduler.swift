import Foundation
import ModelAPI

/// What a queued request hears back: text as it is generated (streamed requests only), then its
/// answer or its failure.
enum JobEvent: Sendable {
    case text(String)
    case done(VisionAnswer)
    case failed(any Error)
}

/// The model's queue: one batch at a time, at most `maxQueue` requests waiting (the next one is
/// refused), waiting requests with equal sampling taken together up to `batch`. Streamed requests
/// are answered alone, so their text can flow as it is generated.
actor Scheduler {
    struct Job {
        let id: UInt64
        let request: VisionRequest
        let streams: Bool
        let events: AsyncStream<JobEvent>.Continuation
    }

    let model: any VisionLanguageModel
    let maxQueue: Int
    let batch: Int
    private var waiting: [Job] = []
    private var running = 0
    private var nextID: UInt64 = 0
    private var closed = false
    private var idle: [CheckedContinuation<Void, Never>] = []

    init(model: any VisionLanguageModel, maxQueue: Int, batch: Int) {
        self.model = model
        self.maxQueue = maxQueue
        self.batch = max(1, batch)
    }

    /// Requests waiting, and requests the model is answering now.
    var load: (waiting: Int, running: Int) { (waiting.count, running) }

    /// Queues a request; its events follow. Throws `APIError` 429 when the queue is full and 503
    /// once the server is stopping. A request whose events are abandoned before it starts
    /// (the client went away) leaves the queue.
    func submit(_ request: VisionRequest, streams: Bool) throws -> AsyncStream<JobEvent> {
        guard !closed else { throw APIError.stopping }
        guard waiting.count < maxQueue else { throw APIError.queueFull(maxQueue) }
        nextID += 1
        let id = nextID
        let (events, continuation) = AsyncStream<JobEvent>.makeStream()
        continuation.onTermination = { [weak self] termination in
            if case .cancelled = termination, let self { Task { await self.withdraw(id) } }
        }
        waiting.append(Job(id: id, request: request, streams: streams, events: continuation))
        pump()
        return events
    }

    /// Refuses new requests; those queued are still answered.
    func close() { closed = true }

    /// Returns once nothing waits or runs.
    func drained() async {
        if waiting.isEmpty && running == 0 { return }
        await withCheckedContinuation { idle.append($0) }
    }

    private func withdraw(_ id: UInt64) {
        waiting.removeAll { $0.id == id }
        wakeIfIdle()
    }

    private func pump() {
        guard running == 0, !waiting.isEmpty else { return wakeIfIdle() }
        let first = waiting.removeFirst()
        var jobs = [first]
        if !first.streams && batch > 1 {
            var rest: [Job] = []
            for job in waiting {
                if jobs.count < batch && !job.streams && job.request.generation == first.request.generation {
                    jobs.append(job)
                } else {
                    rest.append(job)
                }
            }
            waiting = rest
        }
        running = jobs.count
        let model = self.model
        Task {
            await Self.answer(jobs, model: model)
            self.finished()
        }
    }

    private func finished() {
        running = 0
        pump()
    }

    private func wakeIfIdle() {
        guard waiting.isEmpty && running == 0 else { return }
        let waiters = idle
        idle = []
        for w in waiters { w.resume() }
    }

    private static func answer(_ jobs: [Job], model: any VisionLanguageModel) async {
        if jobs.count == 1, let job = jobs.first {
            let events = job.events
            do {
                var onText: (@Sendable (String) -> Void)?
                if job.streams { onText = { piece in events.yield(.text(piece)) } }
                let answer = try await model.answer(job.request, onText: onText)
                events.yield(.done(answer))
            } catch {
                events.yield(.failed(error))
            }
            events.finish()
            return
        }
        let results = await model.answer(jobs.map(\.request))
        for (job, result) in zip(jobs, results) {
            switch result {
            case .success(let answer): job.events.yield(.done(answer))
            case .failure(let error): job.events.yield(.failed(error))
            }
            job.events.finish()
        }
    }
}
