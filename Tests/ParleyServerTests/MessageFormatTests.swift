import Foundation
import Testing
import VaporTesting
@testable import ParleyServer

/// Message formatting and mentions: the parser on its own (including a fuzz run), then
/// through the API.
@Suite("Message formatting and mentions")
struct MessageFormatTests {
    typealias Node = MessageFormat.Node

    static let ann = UUID(uuidString: "00000000-0000-0000-0000-00000000000a")!

    /// A compact rendering of a structure, to compare whole trees as text.
    static func show(_ nodes: [Node]) -> String {
        nodes.map { node -> String in
            let inner = node.children.map { "(" + show($0) + ")" } ?? ""
            switch node.type {
            case .text: return "'" + (node.text ?? "") + "'"
            case .code: return "code'" + (node.text ?? "") + "'"
            case .codeBlock: return "code_block[\(node.language ?? "")]'" + (node.text ?? "") + "'"
            case .link: return "link<\(node.url ?? "")>" + inner
            case .mention: return "@" + (node.handle ?? "") + (node.userID == nil ? "" : "#")
            case .lineBreak: return "br"
            case .list: return ((node.ordered ?? false) ? "ol" : "ul") + inner
            default: return node.type.rawValue + inner
            }
        }.joined(separator: " ")
    }

    static func parsed(_ body: String) -> String {
        show(MessageFormat.parse(body, members: ["ann": ann]))
    }

    @Test("inline formatting: strong, emphasis, code, links, line breaks")
    func inlines() {
        #expect(Self.parsed("**bold** and *italic*") == "paragraph(strong('bold') ' and ' emphasis('italic'))")
        #expect(Self.parsed("__also__ _this_") == "paragraph(strong('also') ' ' emphasis('this'))")
        #expect(Self.parsed("`**not bold**` and ``a ` tick``") == "paragraph(code'**not bold**' ' and ' code'a ` tick')")
        #expect(Self.parsed("see [the docs](https://example.com/a?b=1) or https://example.com/x.")
                == "paragraph('see ' link<https://example.com/a?b=1>('the docs') ' or ' link<https://example.com/x>('https://example.com/x') '.')")
        #expect(Self.parsed("one\ntwo") == "paragraph('one' br 'two')")
        #expect(Self.parsed("one\r\ntwo\rthree") == "paragraph('one' br 'two' br 'three')", "Windows and old Mac line ends")
        #expect(Self.parsed("first\r\n\r\nsecond") == "paragraph('first') paragraph('second')")
        #expect(Self.parsed("*a **b** c*") == "paragraph(emphasis('a ' strong('b') ' c'))")
    }

    @Test("what only looks like formatting stays text")
    func literals() {
        #expect(Self.parsed("snake_case_name and 2 * 3 * 4") == "paragraph('snake_case_name and 2 * 3 * 4')")
        #expect(Self.parsed("**unclosed and * alone") == "paragraph('**unclosed and * alone')")
        #expect(Self.parsed("<img src=x onerror=alert(1)> <b>hi</b>") == "paragraph('<img src=x onerror=alert(1)> <b>hi</b>')")
        #expect(Self.parsed("[click](javascript:alert(1)) [x](data:text/html,hi)")
                == "paragraph('[click](javascript:alert(1)) [x](data:text/html,hi)')")
        #expect(Self.parsed("javascript:alert(1)") == "paragraph('javascript:alert(1)')")
        #expect(Self.parsed("write to ann@example.com") == "paragraph('write to ann@example.com')")
    }

    @Test("blocks: paragraphs, fenced code with a language, quotes, lists")
    func blocks() {
        #expect(Self.parsed("first\n\nsecond") == "paragraph('first') paragraph('second')")
        #expect(Self.parsed("```swift\nlet x = **1**\n<b>\n```\nafter") == "code_block[swift]'let x = **1**\n<b>' paragraph('after')")
        #expect(Self.parsed("```\nnever closed") == "code_block[]'never closed'")
        #expect(Self.parsed("> quoted **text**\n> > deeper\nout") == "quote(paragraph('quoted ' strong('text')) quote(paragraph('deeper'))) paragraph('out')")
        #expect(Self.parsed("- one\n- two\n  continued\n* three") == "ul(list_item('one') list_item('two' br 'continued') list_item('three'))")
        #expect(Self.parsed("1. first\n2) second") == "ol(list_item('first') list_item('second'))")
        #expect(Self.parsed("-not a list\n1.nor this") == "paragraph('-not a list' br '1.nor this')")
    }

    @Test("mentions: members by handle, @channel and @here; strangers, code and e-mail addresses are text")
    func mentions() {
        let nodes = MessageFormat.parse("hi @Ann and @bob, @channel! `@ann` @here", members: ["ann": Self.ann])
        #expect(Self.show(nodes) == "paragraph('hi ' @ann# ' and @bob, ' @channel '! ' code'@ann' ' ' @here)")
        let mentions = MessageFormat.mentions(in: nodes)
        #expect(mentions.userIDs == [Self.ann])
        #expect(mentions.everyone)
        #expect(MessageFormat.mentionedHandles(in: "@ann @Bob.x `@carl` dan@example.com @channel") == ["ann", "bob.x"])
    }

    @Test("random input never crashes, never makes an unsafe link, and only shows characters it was given",
          arguments: [1, 2, 3])
    func fuzz(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        let alphabet: [String] = "ab c*_`[]()>-1.\n@#:/!<".map { String($0) }
            + ["https://x.io/", "javascript:", "@ann", "```", "**", "> ", "- ", "1. "]
        for _ in 0..<2_000 {
            let length = Int.random(in: 0...60, using: &random)
            var input = ""
            for _ in 0..<length { input += alphabet.randomElement(using: &random)! }
            let nodes = MessageFormat.parse(input, members: ["ann": Self.ann])
            #expect(MessageFormat.parse(input, members: ["ann": Self.ann]) == nodes, "deterministic")
            var shown = ""
            func walk(_ node: Node, depth: Int) {
                #expect(depth <= MessageFormat.maxQuoteDepth + MessageFormat.maxInlineDepth + 4, "\(input.debugDescription)")
                if node.type == .link { #expect(MessageFormat.safeURL(node.url ?? ""), "\(input.debugDescription)") }
                shown += node.text ?? ""
                node.children?.forEach { walk($0, depth: depth + 1) }
            }
            nodes.forEach { walk($0, depth: 0) }
            #expect(Set(shown).isSubset(of: Set(input)), "\(input.debugDescription)")
        }
        // Long runs of marks finish too.
        _ = MessageFormat.parse(String(repeating: "**a_", count: 1_000) + String(repeating: "`", count: 999))
        _ = MessageFormat.parse(String(repeating: "> ", count: 2_000) + "deep")
    }

    // MARK: Through the API

    @Test("a sent message carries its structure with mentions resolved; an edit parses it again; events carry it too")
    func api() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("anne")
            let bob = try await app.user("bobby")
            let conversation = try await app.conversation(ann, members: [bob])
            let sent = try await app.post("**hi** @bobby and @stranger `@bobby`", in: conversation, by: ann)
            #expect(sent.status == .created)
            let content = try #require(sent["content"] as? [[String: Any]])
            let inlines = try #require(content.first?["children"] as? [[String: Any]])
            #expect(inlines.map { $0["type"] as? String } == ["strong", "text", "mention", "text", "code"])
            #expect(inlines[2]["user_id"] as? String == bob.id)
            #expect(inlines[2]["handle"] as? String == "bobby")
            #expect(inlines[3]["text"] as? String == " and @stranger ")

            let seq = try #require(sent["seq"] as? Int)
            let edited = try await app.send(.PATCH, "v1/conversations/\(conversation)/messages/\(seq)", json: #"{"body":"plain now"}"#,
                                            token: ann.token)
            #expect(edited.status == .ok)
            #expect(((edited["content"] as? [[String: Any]])?.first?["children"] as? [[String: Any]])?.first?["text"] as? String == "plain now")
            let page = try await app.send(.GET, "v1/conversations/\(conversation)/messages", token: bob.token)
            #expect((page.items.first?["content"] as? [[String: Any]])?.isEmpty == false)
        }
    }

    @Test("a field a send does not know is refused with 422 naming it, and nothing is stored")
    func unknownFields() async throws {
        try await withParley { app, _ in
            let ann = try await app.user("anna")
            let conversation = try await app.conversation(ann)
            let response = try await app.send(.POST, "v1/conversations/\(conversation)/messages",
                                              json: #"{"body":"with a file","files":["f1"]}"#, token: ann.token)
            expectProblem(response, .unprocessableEntity)
            #expect(response.fieldErrors == ["files": "unknown_field"])
            let page = try await app.send(.GET, "v1/conversations/\(conversation)/messages", token: ann.token)
            #expect(page.items.isEmpty)
        }
    }

    @Test("@channel in a conversation of more than 50 members is for its owner and admins")
    func wideMentions() async throws {
        try await withParley { app, _ in
            let owner = try await app.user("host")
            var people: [TestUser] = []
            for n in 0..<MessageService.wideMentionLimit { people.append(try await app.user("guest\(n)")) }
            let conversation = try await app.conversation(owner, kind: "channel", title: "town-hall", members: people)
            let refused = try await app.post("@channel lunch!", in: conversation, by: people[0])
            expectProblem(refused, .unprocessableEntity)
            #expect(refused.fieldErrors == ["body": "mention_not_allowed"])
            #expect(try await app.post("@here lunch!", in: conversation, by: owner).status == .created)
            #expect(try await app.post("no wide mention", in: conversation, by: people[0]).status == .created)
        }
    }
}
