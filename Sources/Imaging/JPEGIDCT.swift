/// The inverse DCT of libjpeg's `jpeg_idct_islow` (Loeffler-Ligtenberg-Moschytz with
/// 13-bit fixed-point constants), so output matches libjpeg-based decoders such as Pillow.
///
/// All arithmetic is in 64-bit `Int`: coefficients from a hostile file may be
/// as large as 32767 * 65535 after dequantisation, which 32-bit libjpeg would wrap.
enum JPEGIDCT {
    private static let constBits = 13
    private static let pass1Bits = 2

    private static let fix0_298631336 = 2446
    private static let fix0_390180644 = 3196
    private static let fix0_541196100 = 4433
    private static let fix0_765366865 = 6270
    private static let fix0_899976223 = 7373
    private static let fix1_175875602 = 9633
    private static let fix1_501321110 = 12299
    private static let fix1_847759065 = 15137
    private static let fix1_961570560 = 16069
    private static let fix2_053119869 = 16819
    private static let fix2_562915447 = 20995
    private static let fix3_072711026 = 25172

    /// Transforms the 64 natural-order coefficients at `coefficients[offset...]`,
    /// dequantised by `quant`, into 8x8 samples at `plane[origin...]` rows `stride` apart.
    static func transform(
        _ coefficients: [Int16], offset: Int, quant: [Int],
        into plane: inout [UInt8], origin: Int, stride: Int,
        workspace ws: inout [Int]
    ) {
        // Pass 1: columns into the workspace, scaled up by pass1Bits.
        for column in 0..<8 {
            let c = offset + column
            if coefficients[c + 8] == 0 && coefficients[c + 16] == 0 && coefficients[c + 24] == 0
                && coefficients[c + 32] == 0 && coefficients[c + 40] == 0 && coefficients[c + 48] == 0
                && coefficients[c + 56] == 0 {
                let dc = (Int(coefficients[c]) &* quant[column]) &<< pass1Bits
                for row in 0..<8 { ws[row * 8 + column] = dc }
                continue
            }
            var z2 = Int(coefficients[c + 16]) &* quant[column + 16]
            var z3 = Int(coefficients[c + 48]) &* quant[column + 48]
            var z1 = (z2 &+ z3) &* fix0_541196100
            var tmp2 = z1 &+ z3 &* -fix1_847759065
            var tmp3 = z1 &+ z2 &* fix0_765366865
            z2 = Int(coefficients[c]) &* quant[column]
            z3 = Int(coefficients[c + 32]) &* quant[column + 32]
            var tmp0 = (z2 &+ z3) &<< constBits
            var tmp1 = (z2 &- z3) &<< constBits
            let tmp10 = tmp0 &+ tmp3
            let tmp13 = tmp0 &- tmp3
            let tmp11 = tmp1 &+ tmp2
            let tmp12 = tmp1 &- tmp2

            tmp0 = Int(coefficients[c + 56]) &* quant[column + 56]
            tmp1 = Int(coefficients[c + 40]) &* quant[column + 40]
            tmp2 = Int(coefficients[c + 24]) &* quant[column + 24]
            tmp3 = Int(coefficients[c + 8]) &* quant[column + 8]
            z1 = tmp0 &+ tmp3
            z2 = tmp1 &+ tmp2
            z3 = tmp0 &+ tmp2
            var z4 = tmp1 &+ tmp3
            let z5 = (z3 &+ z4) &* fix1_175875602
            tmp0 = tmp0 &* fix0_298631336
            tmp1 = tmp1 &* fix2_053119869
            tmp2 = tmp2 &* fix3_072711026
            tmp3 = tmp3 &* fix1_501321110
            z1 = z1 &* -fix0_899976223
            z2 = z2 &* -fix2_562915447
            z3 = z3 &* -fix1_961570560 &+ z5
            z4 = z4 &* -fix0_390180644 &+ z5
            tmp0 = tmp0 &+ z1 &+ z3
            tmp1 = tmp1 &+ z2 &+ z4
            tmp2 = tmp2 &+ z2 &+ z3
            tmp3 = tmp3 &+ z1 &+ z4

            let shift = constBits - pass1Bits
            let round = 1 << (shift - 1)
            ws[column] = (tmp10 &+ tmp3 &+ round) &>> shift
            ws[56 + column] = (tmp10 &- tmp3 &+ round) &>> shift
            ws[8 + column] = (tmp11 &+ tmp2 &+ round) &>> shift
            ws[48 + column] = (tmp11 &- tmp2 &+ round) &>> shift
            ws[16 + column] = (tmp12 &+ tmp1 &+ round) &>> shift
            ws[40 + column] = (tmp12 &- tmp1 &+ round) &>> shift
            ws[24 + column] = (tmp13 &+ tmp0 &+ round) &>> shift
            ws[32 + column] = (tmp13 &- tmp0 &+ round) &>> shift
        }

        // Pass 2: rows from the workspace into samples, removing both scalings and the 128 level shift.
        let shift = constBits + pass1Bits + 3
        let round = 1 << (shift - 1)
        for row in 0..<8 {
            let w = row * 8
            let o = origin + row * stride
            if ws[w + 1] == 0 && ws[w + 2] == 0 && ws[w + 3] == 0 && ws[w + 4] == 0
                && ws[w + 5] == 0 && ws[w + 6] == 0 && ws[w + 7] == 0 {
                let value = clamp(((ws[w] &+ (1 << (pass1Bits + 2))) &>> (pass1Bits + 3)) &+ 128)
                for i in 0..<8 { plane[o + i] = value }
                continue
            }
            var z2 = ws[w + 2]
            var z3 = ws[w + 6]
            var z1 = (z2 &+ z3) &* fix0_541196100
            var tmp2 = z1 &+ z3 &* -fix1_847759065
            var tmp3 = z1 &+ z2 &* fix0_765366865
            var tmp0 = (ws[w] &+ ws[w + 4]) &<< constBits
            var tmp1 = (ws[w] &- ws[w + 4]) &<< constBits
            let tmp10 = tmp0 &+ tmp3
            let tmp13 = tmp0 &- tmp3
            let tmp11 = tmp1 &+ tmp2
            let tmp12 = tmp1 &- tmp2

            tmp0 = ws[w + 7]
            tmp1 = ws[w + 5]
            tmp2 = ws[w + 3]
            tmp3 = ws[w + 1]
            z1 = tmp0 &+ tmp3
            z2 = tmp1 &+ tmp2
            z3 = tmp0 &+ tmp2
            var z4 = tmp1 &+ tmp3
            let z5 = (z3 &+ z4) &* fix1_175875602
            tmp0 = tmp0 &* fix0_298631336
            tmp1 = tmp1 &* fix2_053119869
            tmp2 = tmp2 &* fix3_072711026
            tmp3 = tmp3 &* fix1_501321110
            z1 = z1 &* -fix0_899976223
            z2 = z2 &* -fix2_562915447
            z3 = z3 &* -fix1_961570560 &+ z5
            z4 = z4 &* -fix0_390180644 &+ z5
            tmp0 = tmp0 &+ z1 &+ z3
            tmp1 = tmp1 &+ z2 &+ z4
            tmp2 = tmp2 &+ z2 &+ z3
            tmp3 = tmp3 &+ z1 &+ z4

            plane[o] = clamp(((tmp10 &+ tmp3 &+ round) &>> shift) &+ 128)
            plane[o + 7] = clamp(((tmp10 &- tmp3 &+ round) &>> shift) &+ 128)
            plane[o + 1] = clamp(((tmp11 &+ tmp2 &+ round) &>> shift) &+ 128)
            plane[o + 6] = clamp(((tmp11 &- tmp2 &+ round) &>> shift) &+ 128)
            plane[o + 2] = clamp(((tmp12 &+ tmp1 &+ round) &>> shift) &+ 128)
            plane[o + 5] = clamp(((tmp12 &- tmp1 &+ round) &>> shift) &+ 128)
            plane[o + 3] = clamp(((tmp13 &+ tmp0 &+ round) &>> shift) &+ 128)
            plane[o + 4] = clamp(((tmp13 &- tmp0 &+ round) &>> shift) &+ 128)
        }
    }

    @inline(__always)
    private static func clamp(_ value: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: value < 0 ? 0 : (value > 255 ? 255 : value))
    }
}
