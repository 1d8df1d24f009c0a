import CompressNIO
// ByteBuffer is the currency type of CompressNIO's API; NIOCore comes with it.
import NIOCore

/// zlib-wrapped deflate (RFC 1950), as PNG stores its IDAT stream, done by CompressNIO.
enum ZlibCodec {
    /// Inflates `data`, which must yield at least `expectedSize` bytes; returns exactly that many.
    ///
    /// The output buffer is sized from what the image header implies, so a
    /// decompression bomb stops at that size instead of growing without bound;
    /// bytes beyond it are ignored, as libpng does.
    static func inflate(_ data: [UInt8], expectedSize: Int) throws(ImageError) -> [UInt8] {
        guard expectedSize > 0 else { return [] }
        guard !data.isEmpty else { throw ImageError.corrupt("no compressed image data") }
        // zlib counts in 32 bits; NIO's buffers too.
        guard expectedSize < Int(Int32.max) else { throw ImageError.corrupt("image data too large to inflate") }
        var input = ByteBuffer(bytes: data)
        var output = ByteBufferAllocator().buffer(capacity: expectedSize + 1)
        do {
            let decompressor = try ZlibDecompressor(algorithm: .zlib, windowSize: 15)
            try decompressor.inflate(from: &input, to: &output)
        } catch let error as CompressNIOError {
            // Overflow means more data than expected, and an input shortfall is
            // judged by the size check below; anything else is a broken stream.
            if error != .bufferOverflow && error != .inputBufferOverflow {
                throw ImageError.corrupt("compressed image data is invalid (\(error))")
            }
        } catch {
            throw ImageError.corrupt("compressed image data is invalid")
        }
        guard output.readableBytes >= expectedSize,
              let bytes = output.readBytes(length: expectedSize)
        else {
            throw ImageError.corrupt("compressed image data is truncated")
        }
        return bytes
    }

    /// Deflates `data` into a zlib stream.
    static func deflate(_ data: [UInt8]) -> [UInt8] {
        // CompressNIO dereferences the input's base address, which an empty buffer may lack.
        guard !data.isEmpty else { return stored(data) }
        do {
            let configuration = ZlibConfiguration(
                windowSize: .window128k,
                compressionLevel: .compressionLevel6,
                memoryLevel: .memory128K,
                strategy: .default
            )
            let compressor = try ZlibCompressor(algorithm: .zlib, configuration: configuration)
            var input = ByteBuffer(bytes: data)
            var output = ByteBufferAllocator().buffer(capacity: compressor.maxSize(from: input))
            try compressor.deflate(from: &input, to: &output, flush: .finish)
            if let bytes = output.readBytes(length: output.readableBytes) { return bytes }
        } catch {
            // Only memory exhaustion gets here; an uncompressed stream is still a valid PNG.
        }
        return stored(data)
    }

    /// A zlib stream of uncompressed ("stored") deflate blocks.
    static func stored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        out.reserveCapacity(data.count + data.count / 65535 * 5 + 16)
        var start = 0
        repeat {
            let length = min(65535, data.count - start)
            let isLast = start + length >= data.count
            out.append(isLast ? 1 : 0)
            out.append(UInt8(length & 0xFF))
            out.append(UInt8(length >> 8))
            out.append(UInt8(~length & 0xFF))
            out.append(UInt8((~length >> 8) & 0xFF))
            out.append(contentsOf: data[start..<(start + length)])
            start += length
        } while start < data.count
        let adler = adler32(data)
        out.append(contentsOf: [UInt8(adler >> 24), UInt8((adler >> 16) & 0xFF), UInt8((adler >> 8) & 0xFF), UInt8(adler & 0xFF)])
        return out
    }

    static func adler32(_ data: [UInt8]) -> UInt32 {
        var a: UInt32 = 1
        var b: UInt32 = 0
        var index = 0
        while index < data.count {
            // 5552 is the longest run whose sums cannot overflow 32 bits.
            let end = min(index + 5552, data.count)
            while index < end {
                a &+= UInt32(data[index])
                b &+= a
                index += 1
            }
            a %= 65521
            b %= 65521
        }
        return b << 16 | a
    }
}
