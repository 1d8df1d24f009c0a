/// Decodes baseline (SOF0), extended-Huffman (SOF1) and progressive (SOF2) 8-bit JPEG,
/// greyscale or three-component, with any integral chroma subsampling and restart intervals.
///
/// Every scan's coefficients are kept until the end of the file, one path for
/// sequential and progressive alike; the image is reconstructed once, after EOI.
struct JPEGDecoder {
    /// Natural-order index of the k-th coefficient in zigzag order.
    static let zigzag: [Int] = [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
        12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
        35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
        58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
    ]

    /// A hostile progressive file can repeat cheap scans over a large frame; real encoders use a few dozen.
    private static let maxScans = 256

    struct Component {
        var id: UInt8
        var h: Int
        var v: Int
        var quantSelector: Int
        /// Samples actually covered by the image (libjpeg's downsampled_width/height).
        var width: Int
        var height: Int
        /// Block grid, padded to whole MCUs.
        var blocksPerLine: Int
        var blocksPerColumn: Int
        /// Where this component's blocks start in `coefficients`.
        var offset: Int
        /// The quantisation table in natural order, fixed at the component's first scan.
        var quant: [Int]?
    }

    struct Frame {
        var width: Int
        var height: Int
        var progressive: Bool
        var components: [Component]
        var maxH: Int
        var maxV: Int
        var mcusPerLine: Int
        var mcusPerColumn: Int
    }

    private let bytes: [UInt8]
    private let maxPixels: Int
    private var quantTables: [[Int]?] = [nil, nil, nil, nil]
    private var dcTables: [JPEGHuffmanTable?] = [nil, nil, nil, nil]
    private var acTables: [JPEGHuffmanTable?] = [nil, nil, nil, nil]
    private var frame: Frame?
    private var coefficients: [Int16] = []
    private var restartInterval = 0
    private var eobRun = 0
    private var scanCount = 0
    private var sawJFIF = false
    private var adobeTransform: Int?
    private var orientation = 1

    static func decode(_ bytes: [UInt8], maxPixels: Int) throws(ImageError) -> RGBAImage {
        var decoder = JPEGDecoder(bytes: bytes, maxPixels: maxPixels)
        return try decoder.run()
    }

    private init(bytes: [UInt8], maxPixels: Int) {
        self.bytes = bytes
        self.maxPixels = maxPixels
    }

    private mutating func run() throws(ImageError) -> RGBAImage {
        guard bytes.count >= 2, bytes[0] == 0xFF, bytes[1] == 0xD8 else {
            throw ImageError.unsupported("not a JPEG file")
        }
        var position = 2
        markers: while true {
            // Tolerate garbage and 0xFF fill bytes before a marker, as libjpeg does.
            while position < bytes.count && bytes[position] != 0xFF { position += 1 }
            while position < bytes.count && bytes[position] == 0xFF { position += 1 }
            guard position < bytes.count else { throw ImageError.corrupt("JPEG is truncated (no EOI)") }
            let marker = bytes[position]
            position += 1
            switch marker {
            case 0xD9:
                break markers
            case 0x00, 0x01, 0xD0...0xD7:
                continue
            case 0xD8:
                throw ImageError.corrupt("unexpected SOI marker")
            default:
                break
            }
            var reader = ByteReader(bytes, offset: position)
            let length = try reader.u16BE()
            guard length >= 2 else { throw ImageError.corrupt("bad JPEG segment length") }
            let segment = ByteReader(Array(try reader.read(length - 2)))
            position = reader.offset

            switch marker {
            case 0xC0, 0xC1, 0xC2:
                try parseFrame(segment, progressive: marker == 0xC2)
            case 0xC3:
                throw ImageError.unsupported("lossless JPEG")
            case 0xC5...0xC7, 0xCD...0xCF:
                throw ImageError.unsupported("hierarchical JPEG")
            case 0xC9...0xCB:
                throw ImageError.unsupported("arithmetic-coded JPEG")
            case 0xC4:
                try parseHuffmanTables(segment)
            case 0xDB:
                try parseQuantTables(segment)
            case 0xDD:
                var r = segment
                restartInterval = try r.u16BE()
            case 0xDA:
                position = try decodeScan(segment, dataStart: position)
            case 0xE0:
                if segment.bytes.starts(with: Array("JFIF\0".utf8)) { sawJFIF = true }
            case 0xE1:
                if let value = EXIFOrientation.parse(segment.bytes) { orientation = value }
            case 0xEE:
                if segment.bytes.count >= 12, segment.bytes.starts(with: Array("Adobe".utf8)) {
                    adobeTransform = Int(segment.bytes[11])
                }
            default:
                break // APPn, COM, DNL, DAC and others carry nothing needed here
            }
        }

        guard let frame else { throw ImageError.corrupt("JPEG has no frame header") }
        guard scanCount > 0 else { throw ImageError.corrupt("JPEG has no scan") }
        let image = try reconstruct(frame)
        return EXIFOrientation.apply(orientation, to: image)
    }

    // MARK: - Segments

    private mutating func parseFrame(_ segment: ByteReader, progressive: Bool) throws(ImageError) {
        guard frame == nil else { throw ImageError.unsupported("JPEG with several frames") }
        var r = segment
        let precision = Int(try r.u8())
        let height = try r.u16BE()
        let width = try r.u16BE()
        let count = Int(try r.u8())
        guard precision == 8 else { throw ImageError.unsupported("\(precision)-bit JPEG") }
        guard height > 0 else { throw ImageError.unsupported("JPEG height defined by DNL") }
        guard width > 0 else { throw ImageError.corrupt("JPEG width is zero") }
        switch count {
        case 1, 3: break
        case 4: throw ImageError.unsupported("CMYK JPEG")
        default: throw ImageError.unsupported("JPEG with \(count) components")
        }
        guard width * height <= maxPixels else { throw ImageError.tooLarge(width: width, height: height) }

        var components: [Component] = []
        for _ in 0..<count {
            let id = try r.u8()
            let sampling = Int(try r.u8())
            let quant = Int(try r.u8())
            let h = sampling >> 4
            let v = sampling & 15
            guard (1...4).contains(h), (1...4).contains(v), quant <= 3 else {
                throw ImageError.corrupt("bad JPEG component parameters")
            }
            guard !components.contains(where: { $0.id == id }) else {
                throw ImageError.corrupt("duplicate JPEG component id")
            }
            components.append(Component(
                id: id, h: h, v: v, quantSelector: quant, width: 0, height: 0,
                blocksPerLine: 0, blocksPerColumn: 0, offset: 0
            ))
        }
        let maxH = components.map(\.h).max() ?? 1
        let maxV = components.map(\.v).max() ?? 1
        guard components.allSatisfy({ maxH % $0.h == 0 && maxV % $0.v == 0 }) else {
            throw ImageError.unsupported("fractional JPEG chroma subsampling")
        }
        let mcusPerLine = (width + 8 * maxH - 1) / (8 * maxH)
        let mcusPerColumn = (height + 8 * maxV - 1) / (8 * maxV)
        var total = 0
        for i in components.indices {
            let c = components[i]
            components[i].width = (width * c.h + maxH - 1) / maxH
            components[i].height = (height * c.v + maxV - 1) / maxV
            components[i].blocksPerLine = mcusPerLine * c.h
            components[i].blocksPerColumn = mcusPerColumn * c.v
            components[i].offset = total
            total += mcusPerLine * c.h * mcusPerColumn * c.v * 64
        }
        coefficients = [Int16](repeating: 0, count: total)
        frame = Frame(
            width: width, height: height, progressive: progressive, components: components,
            maxH: maxH, maxV: maxV, mcusPerLine: mcusPerLine, mcusPerColumn: mcusPerColumn
        )
    }

    private mutating func parseQuantTables(_ segment: ByteReader) throws(ImageError) {
        var r = segment
        while !r.isAtEnd {
            let spec = Int(try r.u8())
            let precision = spec >> 4
            let id = spec & 15
            guard precision <= 1, id <= 3 else { throw ImageError.corrupt("bad quantisation table") }
            var table = [Int](repeating: 0, count: 64)
            for k in 0..<64 {
                table[Self.zigzag[k]] = precision == 0 ? Int(try r.u8()) : try r.u16BE()
            }
            quantTables[id] = table
        }
    }

    private mutating func parseHuffmanTables(_ segment: ByteReader) throws(ImageError) {
        var r = segment
        while !r.isAtEnd {
            let spec = Int(try r.u8())
            let tableClass = spec >> 4
            let id = spec & 15
            guard tableClass <= 1, id <= 3 else { throw ImageError.corrupt("bad Huffman table") }
            var counts: [Int] = []
            for _ in 0..<16 { counts.append(Int(try r.u8())) }
            let symbols = Array(try r.read(counts.reduce(0, +)))
            let table = try JPEGHuffmanTable(counts: counts, symbols: symbols)
            if tableClass == 0 { dcTables[id] = table } else { acTables[id] = table }
        }
    }

    // MARK: - Scans

    /// Decodes one scan whose entropy-coded data starts at `dataStart`;
    /// returns the position of the marker that ends it.
    private mutating func decodeScan(_ segment: ByteReader, dataStart: Int) throws(ImageError) -> Int {
        guard var frame else { throw ImageError.corrupt("JPEG scan before frame header") }
        scanCount += 1
        guard scanCount <= Self.maxScans else { throw ImageError.corrupt("too many JPEG scans") }

        var r = segment
        let count = Int(try r.u8())
        guard (1...4).contains(count) else { throw ImageError.corrupt("bad JPEG scan component count") }
        var scanComponents: [(index: Int, dc: Int, ac: Int)] = []
        for _ in 0..<count {
            let id = try r.u8()
            let tables = Int(try r.u8())
            guard let index = frame.components.firstIndex(where: { $0.id == id }),
                  !scanComponents.contains(where: { $0.index == index }),
                  tables >> 4 <= 3, tables & 15 <= 3
            else { throw ImageError.corrupt("bad JPEG scan component") }
            scanComponents.append((index, tables >> 4, tables & 15))
        }
        var spectralStart = Int(try r.u8())
        var spectralEnd = Int(try r.u8())
        let approximation = Int(try r.u8())
        var high = approximation >> 4
        var low = approximation & 15
        if frame.progressive {
            guard spectralStart <= spectralEnd, spectralEnd <= 63, high <= 13, low <= 13,
                  spectralStart > 0 || spectralEnd == 0,
                  spectralStart == 0 || count == 1
            else { throw ImageError.corrupt("bad progressive JPEG scan parameters") }
        } else {
            // Sequential scans always carry the whole spectrum; the header fields are ignored as libjpeg does.
            spectralStart = 0
            spectralEnd = 63
            high = 0
            low = 0
        }

        // Resolve tables now, so the block decoders never meet a missing one.
        let needsDC = spectralStart == 0 && high == 0
        let needsAC = spectralEnd > 0
        var dc: [JPEGHuffmanTable] = []
        var ac: [JPEGHuffmanTable] = []
        for component in scanComponents {
            if needsDC {
                guard let table = dcTables[component.dc] else { throw ImageError.corrupt("missing Huffman table") }
                dc.append(table)
            } else if let table = dcTables[component.dc] {
                dc.append(table)
            } else {
                dc.append(try JPEGHuffmanTable(counts: [1] + [Int](repeating: 0, count: 15), symbols: [0]))
            }
            if needsAC {
                guard let table = acTables[component.ac] else { throw ImageError.corrupt("missing Huffman table") }
                ac.append(table)
            } else {
                ac.append(dc[dc.count - 1])
            }
            let c = frame.components[component.index]
            if c.quant == nil {
                guard let quant = quantTables[c.quantSelector] else {
                    throw ImageError.corrupt("missing quantisation table")
                }
                frame.components[component.index].quant = quant
            }
        }
        self.frame = frame

        let mode: BlockMode
        if !frame.progressive {
            mode = .sequential
        } else if spectralStart == 0 {
            mode = high == 0 ? .dcFirst(low) : .dcRefine(low)
        } else {
            mode = high == 0 ? .acFirst(spectralStart, spectralEnd, low) : .acRefine(spectralStart, spectralEnd, low)
        }

        var reader = JPEGBitReader(data: bytes, position: dataStart)
        eobRun = 0
        var predictors = [Int](repeating: 0, count: scanComponents.count)

        if count == 1 {
            // A single-component scan is not interleaved: its MCU is one block, in raster order.
            let c = frame.components[scanComponents[0].index]
            let blocksWide = (c.width + 7) / 8
            let blocksHigh = (c.height + 7) / 8
            let total = blocksWide * blocksHigh
            for n in 0..<total {
                if restartInterval > 0 && n > 0 && n % restartInterval == 0 {
                    try restart(&reader)
                    predictors[0] = 0
                }
                let offset = c.offset + ((n / blocksWide) * c.blocksPerLine + n % blocksWide) * 64
                try decodeBlock(mode, &reader, dc: dc[0], ac: ac[0], offset: offset, predictor: &predictors[0])
                if reader.overrunBits > 16 { throw ImageError.corrupt("JPEG scan data is truncated") }
            }
        } else {
            let total = frame.mcusPerLine * frame.mcusPerColumn
            for n in 0..<total {
                if restartInterval > 0 && n > 0 && n % restartInterval == 0 {
                    try restart(&reader)
                    for i in predictors.indices { predictors[i] = 0 }
                }
                let mcuY = n / frame.mcusPerLine
                let mcuX = n % frame.mcusPerLine
                for (i, component) in scanComponents.enumerated() {
                    let c = frame.components[component.index]
                    for v in 0..<c.v {
                        let row = mcuY * c.v + v
                        for h in 0..<c.h {
                            let offset = c.offset + (row * c.blocksPerLine + mcuX * c.h + h) * 64
                            try decodeBlock(mode, &reader, dc: dc[i], ac: ac[i], offset: offset, predictor: &predictors[i])
                        }
                    }
                }
                if reader.overrunBits > 16 { throw ImageError.corrupt("JPEG scan data is truncated") }
            }
        }
        return nextMarker(from: reader.position)
    }

    /// Finds the marker that ends a scan's data, skipping any restart markers.
    private func nextMarker(from start: Int) -> Int {
        var p = start
        while p + 1 < bytes.count {
            if bytes[p] == 0xFF {
                let next = bytes[p + 1]
                if next != 0 && next != 0xFF && !(0xD0...0xD7).contains(next) { return p }
            }
            p += 1
        }
        return bytes.count
    }

    private mutating func restart(_ reader: inout JPEGBitReader) throws(ImageError) {
        reader.reset()
        eobRun = 0
        var p = reader.position
        while p + 1 < bytes.count && !(bytes[p] == 0xFF && bytes[p + 1] != 0 && bytes[p + 1] != 0xFF) { p += 1 }
        guard p + 1 < bytes.count, (0xD0...0xD7).contains(bytes[p + 1]) else {
            throw ImageError.corrupt("missing JPEG restart marker")
        }
        reader.position = p + 2
    }

    private enum BlockMode {
        case sequential
        case dcFirst(Int)
        case dcRefine(Int)
        case acFirst(Int, Int, Int)
        case acRefine(Int, Int, Int)
    }

    @inline(__always)
    private mutating func decodeBlock(
        _ mode: BlockMode, _ reader: inout JPEGBitReader,
        dc: JPEGHuffmanTable, ac: JPEGHuffmanTable, offset: Int, predictor: inout Int
    ) throws(ImageError) {
        switch mode {
        case .sequential:
            try decodeSequential(&reader, dc: dc, ac: ac, offset: offset, predictor: &predictor)
        case .dcFirst(let low):
            let category = try dc.decode(&reader)
            guard category <= 15 else { throw ImageError.corrupt("bad DC coefficient") }
            predictor = predictor &+ reader.receiveExtend(category)
            coefficients[offset] = Int16(truncatingIfNeeded: predictor &<< low)
        case .dcRefine(let low):
            if reader.bit() != 0 {
                coefficients[offset] |= Int16(truncatingIfNeeded: 1 << low)
            }
        case .acFirst(let start, let end, let low):
            try decodeACFirst(&reader, ac: ac, offset: offset, start: start, end: end, low: low)
        case .acRefine(let start, let end, let low):
            try decodeACRefine(&reader, ac: ac, offset: offset, start: start, end: end, low: low)
        }
    }

    @inline(__always)
    private mutating func decodeSequential(
        _ reader: inout JPEGBitReader, dc: JPEGHuffmanTable, ac: JPEGHuffmanTable,
        offset: Int, predictor: inout Int
    ) throws(ImageError) {
        let category = try dc.decode(&reader)
        guard category <= 15 else { throw ImageError.corrupt("bad DC coefficient") }
        predictor = predictor &+ reader.receiveExtend(category)
        coefficients[offset] = Int16(truncatingIfNeeded: predictor)
        var k = 1
        while k < 64 {
            let rs = try ac.decode(&reader)
            let size = rs & 15
            let run = rs >> 4
            if size == 0 {
                if run != 15 { break }
                k += 16
                continue
            }
            k += run
            guard k < 64 else { throw ImageError.corrupt("JPEG coefficient index out of range") }
            coefficients[offset + Self.zigzag[k]] = Int16(truncatingIfNeeded: reader.receiveExtend(size))
            k += 1
        }
    }

    private mutating func decodeACFirst(
        _ reader: inout JPEGBitReader, ac: JPEGHuffmanTable, offset: Int, start: Int, end: Int, low: Int
    ) throws(ImageError) {
        if eobRun > 0 {
            eobRun -= 1
            return
        }
        var k = start
        while k <= end {
            let rs = try ac.decode(&reader)
            let size = rs & 15
            let run = rs >> 4
            if size == 0 {
                if run < 15 {
                    eobRun = (1 << run) - 1 + reader.bits(run)
                    break
                }
                k += 16
                continue
            }
            k += run
            guard k <= 63 else { throw ImageError.corrupt("JPEG coefficient index out of range") }
            coefficients[offset + Self.zigzag[k]] = Int16(truncatingIfNeeded: reader.receiveExtend(size) &* (1 << low))
            k += 1
        }
    }

    /// Successive-approximation refinement of AC coefficients (ITU T.81 G.1.2.3):
    /// one correction bit for every coefficient already non-zero, new ones are ±1 at this bit.
    private mutating func decodeACRefine(
        _ reader: inout JPEGBitReader, ac: JPEGHuffmanTable, offset: Int, start: Int, end: Int, low: Int
    ) throws(ImageError) {
        let plus = 1 << low
        let minus = -1 << low
        var k = start
        if eobRun == 0 {
            while k <= end {
                let rs = try ac.decode(&reader)
                var size = rs & 15
                var run = rs >> 4
                if size == 0 {
                    if run < 15 {
                        eobRun = (1 << run) + reader.bits(run)
                        break
                    }
                    // ZRL: skip 16 zero coefficients, refining the non-zero ones passed on the way.
                } else {
                    guard size == 1 else { throw ImageError.corrupt("bad JPEG refinement code") }
                    size = reader.bit() != 0 ? plus : minus
                }
                while k <= end {
                    let z = offset + Self.zigzag[k]
                    k += 1
                    let value = Int(coefficients[z])
                    if value != 0 {
                        if reader.bit() != 0 && value & plus == 0 {
                            coefficients[z] = Int16(truncatingIfNeeded: value >= 0 ? value &+ plus : value &+ minus)
                        }
                    } else {
                        if run == 0 {
                            if size != 0 { coefficients[z] = Int16(truncatingIfNeeded: size) }
                            break
                        }
                        run -= 1
                    }
                }
            }
        }
        if eobRun > 0 {
            // Inside an end-of-band run only the existing non-zero coefficients get their bit.
            while k <= end {
                let z = offset + Self.zigzag[k]
                let value = Int(coefficients[z])
                if value != 0 && reader.bit() != 0 && value & plus == 0 {
                    coefficients[z] = Int16(truncatingIfNeeded: value >= 0 ? value &+ plus : value &+ minus)
                }
                k += 1
            }
            eobRun -= 1
        }
    }

    // MARK: - Reconstruction

    private func reconstruct(_ frame: Frame) throws(ImageError) -> RGBAImage {
        var planes: [[UInt8]] = []
        var workspace = [Int](repeating: 0, count: 64)
        for c in frame.components {
            let stride = c.blocksPerLine * 8
            var plane = [UInt8](repeating: 0, count: stride * c.blocksPerColumn * 8)
            // A component that no scan touched keeps zero coefficients (mid-grey).
            let quant = c.quant ?? [Int](repeating: 0, count: 64)
            // Only blocks that cover image samples are transformed; the MCU padding is never shown.
            let blocksWide = min(c.blocksPerLine, (c.width + 7) / 8)
            let blocksHigh = min(c.blocksPerColumn, (c.height + 7) / 8)
            for by in 0..<blocksHigh {
                for bx in 0..<blocksWide {
                    JPEGIDCT.transform(
                        coefficients, offset: c.offset + (by * c.blocksPerLine + bx) * 64, quant: quant,
                        into: &plane, origin: by * 8 * stride + bx * 8, stride: stride, workspace: &workspace
                    )
                }
            }
            planes.append(plane)
        }
        let colorTransform: JPEGColorConverter.Transform
        if frame.components.count == 1 {
            colorTransform = .gray
        } else if sawJFIF {
            colorTransform = .yCbCr
        } else if let adobeTransform {
            colorTransform = adobeTransform == 0 ? .rgb : .yCbCr
        } else {
            let ids = frame.components.map(\.id)
            colorTransform = ids == [0x52, 0x47, 0x42] ? .rgb : .yCbCr
        }
        return JPEGColorConverter.convert(frame: frame, planes: planes, transform: colorTransform)
    }
}
