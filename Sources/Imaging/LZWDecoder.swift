/// The variable-width LZW of GIF image data (codes packed least significant bit first).
enum LZWDecoder {
    /// Decodes colour indices; always returns exactly `pixelCount` of them.
    ///
    /// Indices after an early end code, or after the data runs out, stay 0, as
    /// browsers show such short frames; a code that is not yet in the table is corrupt.
    static func decode(_ data: [UInt8], minimumCodeSize: Int, pixelCount: Int) throws(ImageError) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: pixelCount)
        guard pixelCount > 0 else { return output }
        let clearCode = 1 << minimumCodeSize
        let endCode = clearCode + 1

        var prefix = [UInt16](repeating: 0, count: 4096)
        var suffix = [UInt8](repeating: 0, count: 4096)
        var first = [UInt8](repeating: 0, count: 4096)
        var stack = [UInt8](repeating: 0, count: 4097)
        for code in 0..<min(clearCode, 256) {
            suffix[code] = UInt8(code)
            first[code] = UInt8(code)
        }

        var codeSize = minimumCodeSize + 1
        var nextCode = endCode + 1
        var previous = -1
        var written = 0
        var bitBuffer = 0
        var bitCount = 0
        var position = 0

        while written < pixelCount {
            while bitCount < codeSize {
                guard position < data.count else { return output }
                bitBuffer |= Int(data[position]) << bitCount
                position += 1
                bitCount += 8
            }
            let code = bitBuffer & ((1 << codeSize) - 1)
            bitBuffer >>= codeSize
            bitCount -= codeSize

            if code == clearCode {
                codeSize = minimumCodeSize + 1
                nextCode = endCode + 1
                previous = -1
                continue
            }
            if code == endCode { return output }

            var entry: Int
            if previous < 0 {
                guard code < clearCode else { throw ImageError.corrupt("LZW stream starts with an undefined code") }
                entry = code
            } else if code < nextCode {
                entry = code
                if nextCode < 4096 {
                    prefix[nextCode] = UInt16(previous)
                    suffix[nextCode] = first[code]
                    first[nextCode] = first[previous]
                    nextCode += 1
                }
            } else if code == nextCode && nextCode < 4096 {
                // The KwKwK case: the code being defined is the previous string plus its own first byte.
                prefix[nextCode] = UInt16(previous)
                suffix[nextCode] = first[previous]
                first[nextCode] = first[previous]
                nextCode += 1
                entry = code
            } else {
                throw ImageError.corrupt("LZW code out of range")
            }
            if nextCode == 1 << codeSize && codeSize < 12 { codeSize += 1 }

            // Unwind the chain backwards onto the stack; its depth is bounded by the table size.
            var depth = 0
            while entry > endCode && depth < 4096 {
                stack[depth] = suffix[entry]
                depth += 1
                entry = Int(prefix[entry])
            }
            stack[depth] = UInt8(truncatingIfNeeded: entry)
            depth += 1
            while depth > 0 && written < pixelCount {
                depth -= 1
                output[written] = stack[depth]
                written += 1
            }
            previous = code
        }
        return output
    }
}
