import CFFmpeg
import DenseCore

extension VideoReader {
    /// Reads every packet of the video stream without decoding: exact frame count, presentation
    /// times, key frames and whether the rate varies. Cost is I/O only (about a second per GB).
    public static func scanPackets(path: String) throws -> PacketScan {
        var (fmt, index): (UnsafeMutablePointer<AVFormatContext>?, Int) = try openContainer(path)
        defer { avformat_close_input(&fmt) }
        let timeBase = rational(fmt!.pointee.streams[index]!.pointee.time_base) ?? Rational(1, 90_000)
        guard let packet = av_packet_alloc() else {
            throw VideoError(.undecodable, path: path, reason: "out of memory")
        }
        defer {
            var p: UnsafeMutablePointer<AVPacket>? = packet
            av_packet_free(&p)
        }
        var ticks: [Int64] = []
        var keyTicks: [Int64] = []
        var untimed = 0
        var corrupt = 0
        var endedEarly = false
        while true {
            let rc = av_read_frame(fmt, packet)
            if rc < 0 {
                endedEarly = rc != dc_averror_eof()
                break
            }
            defer { av_packet_unref(packet) }
            guard packet.pointee.stream_index == Int32(index) else { continue }
            if dc_packet_is_corrupt(packet) != 0 { corrupt += 1 }
            if packet.pointee.pts == dc_nopts_value() {
                untimed += 1
                continue
            }
            ticks.append(packet.pointee.pts)
            if dc_packet_is_key(packet) != 0 { keyTicks.append(packet.pointee.pts) }
        }
        ticks.sort()
        keyTicks.sort()
        var minGap: Int64?
        var maxGap: Int64?
        for (a, b) in zip(ticks, ticks.dropFirst()) where b > a {
            let gap = b - a
            minGap = min(minGap ?? gap, gap)
            maxGap = max(maxGap ?? gap, gap)
        }
        let time = { (t: Int64) in MediaTime(pts: t, timeBase: timeBase) ?? .zero }
        return PacketScan(
            presentationTimes: ticks.map(time),
            keyTimes: keyTicks.map(time),
            packetsWithoutTime: untimed,
            corruptPackets: corrupt,
            minFrameDuration: minGap.map(time),
            maxFrameDuration: maxGap.map(time),
            tick: MediaTime(timeBase),
            endedEarly: endedEarly)
    }
}
