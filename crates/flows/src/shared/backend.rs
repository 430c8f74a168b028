//! The seller's back office as the flows see it: prices, orders, issued
//! certificates and open invoices, behind the [`Backend`] trait, with
//! [`DemoBackend`], the deterministic demo the product ships with.
//!
//! The flows never build customer-facing text from here: the backend returns
//! data (codes, amounts, days, links) and each version's `texts.txt` words it.
//!
//! # The demo data
//! Dates are kept relative to the `now` the engine passes to the handlers, so
//! the demo tells the same story whatever the real date is (the transcripts
//! fix the clock at 2026-11-25T12:00:00Z; "today" below is that day).
//!
//! | document | certificate | open invoice | latest order |
//! |---|---|---|---|
//! | CPF 529.982.247-25 | e-CPF A1, expires in 12 days | R$ 289,90 | CF-100001, awaiting payment |
//! | CPF 111.444.777-35 | e-CPF A3 token, expired 400 days ago | none | CF-100002, awaiting validation |
//! | CPF 390.533.447-05 | e-CPF A3 card, expired 10 days ago | R$ 159,90 | none |
//! | CPF 123.456.789-09 | none | none | none |
//! | CNPJ 11.222.333/0001-81 | e-CNPJ A3 token, expires in 200 days | R$ 1.379,70 | CF-100003, issued |
//! | CNPJ 12.345.678/0001-95 | none | none | none |
//!
//! Orders created in the demo get a number derived from their contents and
//! the clock (never below CF-200000, so they cannot collide with the fixed
//! ones) and are found again by number or document afterwards. The demo keeps
//! the latest [`MAX_CREATED_ORDERS`] of them, so a long-running demo server or
//! a load test does not grow without bound.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::Mutex;

use switchyard_engine::time::Timestamp;

use crate::shared::dates::Day;
use crate::shared::document::{Document, Kind};
use crate::shared::money::Cents;
use crate::shared::order::OrderNumber;

/// e-CPF (a person) or e-CNPJ (a company).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum CertType {
    ECpf,
    ECnpj,
}

impl CertType {
    pub const ALL: [CertType; 2] = [CertType::ECpf, CertType::ECnpj];

    /// The code stored in session data and used in text keys: `ecpf`, `ecnpj`.
    pub fn code(self) -> &'static str {
        match self {
            CertType::ECpf => "ecpf",
            CertType::ECnpj => "ecnpj",
        }
    }

    pub fn from_code(code: &str) -> Option<CertType> {
        CertType::ALL.into_iter().find(|kind| kind.code() == code)
    }

    /// The document the holder identifies with.
    pub fn document_kind(self) -> Kind {
        match self {
            CertType::ECpf => Kind::Cpf,
            CertType::ECnpj => Kind::Cnpj,
        }
    }
}

/// Where the certificate lives.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Media {
    /// A file installed on the computer (valid 1 year).
    A1,
    /// A USB token (valid up to 3 years).
    A3Token,
    /// A smart card (valid up to 3 years).
    A3Card,
}

impl Media {
    pub const ALL: [Media; 3] = [Media::A1, Media::A3Token, Media::A3Card];

    /// `a1`, `a3_token`, `a3_card`.
    pub fn code(self) -> &'static str {
        match self {
            Media::A1 => "a1",
            Media::A3Token => "a3_token",
            Media::A3Card => "a3_card",
        }
    }

    pub fn from_code(code: &str) -> Option<Media> {
        Media::ALL.into_iter().find(|media| media.code() == code)
    }
}

/// A certificate product: a type on a media.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct Product {
    pub cert: CertType,
    pub media: Media,
}

impl Product {
    /// Every product, e-CPF first, in the order menus show them.
    pub fn all() -> impl Iterator<Item = Product> {
        CertType::ALL.into_iter().flat_map(|cert| Media::ALL.into_iter().map(move |media| Product { cert, media }))
    }

    /// `ecpf_a1`, `ecnpj_a3_token`, ...: session data and text keys (`product.ecpf_a1`).
    pub fn code(self) -> String {
        format!("{}_{}", self.cert.code(), self.media.code())
    }

    pub fn from_code(code: &str) -> Option<Product> {
        let (cert, media) = code.split_once('_')?;
        Some(Product { cert: CertType::from_code(cert)?, media: Media::from_code(media)? })
    }
}

/// How the holder's identity is validated before issuing.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Validation {
    VideoCall,
    InPerson,
}

impl Validation {
    /// `video`, `presencial`.
    pub fn code(self) -> &'static str {
        match self {
            Validation::VideoCall => "video",
            Validation::InPerson => "presencial",
        }
    }

    pub fn from_code(code: &str) -> Option<Validation> {
        [Validation::VideoCall, Validation::InPerson].into_iter().find(|validation| validation.code() == code)
    }
}

/// Where an order is.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum OrderState {
    AwaitingPayment,
    AwaitingValidation,
    Issued,
}

impl OrderState {
    /// `awaiting_payment`, `awaiting_validation`, `issued` (text keys use it).
    pub fn code(self) -> &'static str {
        match self {
            OrderState::AwaitingPayment => "awaiting_payment",
            OrderState::AwaitingValidation => "awaiting_validation",
            OrderState::Issued => "issued",
        }
    }
}

/// What a new order asks for.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct OrderRequest {
    pub product: Product,
    pub document: Document,
    /// Where the order confirmation goes; renewals use the address on file.
    pub email: Option<String>,
    /// Renewals of a valid certificate need no new validation.
    pub validation: Option<Validation>,
    pub renewal: bool,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Order {
    pub number: OrderNumber,
    pub product: Product,
    pub state: OrderState,
    pub price: Cents,
    pub created: Day,
    pub payment_link: String,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Certificate {
    pub product: Product,
    pub expires: Day,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Invoice {
    pub amount: Cents,
    pub due: Day,
    /// The boleto's "linha digitável".
    pub digitable_line: String,
    pub link: String,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PaymentPlan {
    pub installments: u64,
    pub each: Cents,
    pub first_due: Day,
    pub link: String,
}

/// The back office. Calls are synchronous: the step handlers that use it are.
/// `now` is the engine's clock for the turn; a real back office answers from
/// its own records and may ignore it.
pub trait Backend: Send + Sync + fmt::Debug {
    /// The price of a new certificate.
    fn price(&self, product: Product) -> Cents;
    /// The price of renewing a certificate of this product.
    fn renewal_price(&self, product: Product) -> Cents;
    /// Creates an order awaiting payment.
    fn create_order(&self, request: &OrderRequest, now: Timestamp) -> Order;
    fn order(&self, number: OrderNumber, now: Timestamp) -> Option<Order>;
    /// The most recent order of the holder of `document`.
    fn latest_order(&self, document: &Document, now: Timestamp) -> Option<Order>;
    /// The holder's most recent certificate, valid or not.
    fn certificate(&self, document: &Document, now: Timestamp) -> Option<Certificate>;
    fn open_invoice(&self, document: &Document, now: Timestamp) -> Option<Invoice>;
    /// Replaces the open invoice by `installments` boletos.
    fn payment_plan(&self, invoice: &Invoice, installments: u64, now: Timestamp) -> PaymentPlan;
}

/// One demo customer. Day offsets are relative to the turn's day.
struct DemoRecord {
    document: &'static str,
    certificate: Option<(Product, i64)>,
    invoice: Option<u64>,
    order: Option<(u32, Product, OrderState, i64)>,
}

const fn product(cert: CertType, media: Media) -> Product {
    Product { cert, media }
}

const DEMO: &[DemoRecord] = &[
    DemoRecord {
        document: "52998224725",
        certificate: Some((product(CertType::ECpf, Media::A1), 12)),
        invoice: Some(28_990),
        order: Some((100_001, product(CertType::ECpf, Media::A3Token), OrderState::AwaitingPayment, -1)),
    },
    DemoRecord {
        document: "11144477735",
        certificate: Some((product(CertType::ECpf, Media::A3Token), -400)),
        invoice: None,
        order: Some((100_002, product(CertType::ECpf, Media::A1), OrderState::AwaitingValidation, -3)),
    },
    DemoRecord {
        document: "39053344705",
        certificate: Some((product(CertType::ECpf, Media::A3Card), -10)),
        invoice: Some(15_990),
        order: None,
    },
    DemoRecord {
        document: "11222333000181",
        certificate: Some((product(CertType::ECnpj, Media::A3Token), 200)),
        invoice: Some(137_970),
        order: Some((100_003, product(CertType::ECnpj, Media::A1), OrderState::Issued, -20)),
    },
];

/// An order created during the demo, with its holder.
struct Created {
    document: String,
    order: Order,
}

/// How many created orders the demo remembers.
pub const MAX_CREATED_ORDERS: usize = 10_000;

/// Orders created since start-up.
#[derive(Default)]
struct CreatedOrders {
    /// The latest ones, oldest first, at most [`MAX_CREATED_ORDERS`].
    kept: VecDeque<Created>,
    /// The numbers in `kept`, for collision checks.
    numbers: HashSet<u32>,
    /// Every order created, kept or not (feeds the next number).
    total: u64,
}

/// The deterministic demo back office (see the module docs for its data).
#[derive(Default)]
pub struct DemoBackend {
    created: Mutex<CreatedOrders>,
}

impl fmt::Debug for DemoBackend {
    /// The created orders hold documents: only their count is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoBackend").field("created_orders", &self.lock().total).finish()
    }
}

const PAYMENT_LINK_BASE: &str = "https://certifacil.example/pagar/";
const RENEWAL_DISCOUNT_PERCENT: u64 = 15;

impl DemoBackend {
    pub fn new() -> DemoBackend {
        DemoBackend::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CreatedOrders> {
        // Pushing an order cannot leave the list half-written, so a poisoned lock is usable.
        self.created.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn record(document: &Document) -> Option<&'static DemoRecord> {
        DEMO.iter().find(|record| record.document == document.digits())
    }

    fn demo_order(
        &self,
        number: u32,
        product: Product,
        state: OrderState,
        age_days: i64,
        now: Timestamp,
    ) -> Option<Order> {
        let number = OrderNumber::new(number)?;
        Some(Order {
            number,
            product,
            state,
            price: self.price(product),
            created: Day::of(now).plus(age_days),
            payment_link: format!("{PAYMENT_LINK_BASE}{number}"),
        })
    }

    /// A number in CF-200000..=CF-999999 from the order's contents, the clock
    /// and how many orders exist, so reruns of a conversation get the same one.
    fn next_number(created: &CreatedOrders, request: &OrderRequest, now: Timestamp) -> OrderNumber {
        let hash = fnv(&[
            request.document.digits().as_bytes(),
            request.product.code().as_bytes(),
            &now.as_millis().to_le_bytes(),
            &created.total.to_le_bytes(),
        ]);
        let mut number = 200_000 + (hash % 800_000) as u32;
        while created.numbers.contains(&number) {
            number = if number == 999_999 { 200_000 } else { number + 1 };
        }
        OrderNumber::new(number).unwrap_or_else(|| unreachable!("200000..=999999 is in range"))
    }
}

/// FNV-1a over `parts`: a stable hash for demo numbers (std's hasher is
/// randomly seeded per process).
fn fnv(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts.iter().flat_map(|part| part.iter()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// A plausible 47-digit "linha digitável" for a demo boleto. `reference` is
/// the boleto's own number (never the customer's document).
fn digitable_line(amount: Cents, due: Day, reference: u64) -> String {
    let reference = format!("{:010}", reference % 10_000_000_000);
    // Due-date factor as banks count it: days since 1997-10-07, kept in 1000..=9999.
    let base = Day::from_ymd(1997, 10, 7).unwrap_or(due);
    let factor = 1000 + due.days_since(base).rem_euclid(9000);
    format!(
        "23790.{}{} {}.{}0 00000.000000 1 {factor:04}{:010}",
        &reference[0..4],
        &reference[4..5],
        &reference[5..10],
        &reference[0..5],
        amount.0
    )
}

impl Backend for DemoBackend {
    fn price(&self, product: Product) -> Cents {
        Cents(match (product.cert, product.media) {
            (CertType::ECpf, Media::A1) => 15_990,
            (CertType::ECpf, Media::A3Token) => 28_990,
            (CertType::ECpf, Media::A3Card) => 24_990,
            (CertType::ECnpj, Media::A1) => 23_990,
            (CertType::ECnpj, Media::A3Token) => 37_990,
            (CertType::ECnpj, Media::A3Card) => 33_990,
        })
    }

    fn renewal_price(&self, product: Product) -> Cents {
        self.price(product).discounted(RENEWAL_DISCOUNT_PERCENT)
    }

    fn create_order(&self, request: &OrderRequest, now: Timestamp) -> Order {
        let mut created = self.lock();
        let number = DemoBackend::next_number(&created, request, now);
        let price = if request.renewal { self.renewal_price(request.product) } else { self.price(request.product) };
        let order = Order {
            number,
            product: request.product,
            state: OrderState::AwaitingPayment,
            price,
            created: Day::of(now),
            payment_link: format!("{PAYMENT_LINK_BASE}{number}"),
        };
        if created.kept.len() >= MAX_CREATED_ORDERS
            && let Some(oldest) = created.kept.pop_front()
        {
            created.numbers.remove(&oldest.order.number.number());
        }
        created.numbers.insert(number.number());
        created.kept.push_back(Created { document: request.document.digits().to_owned(), order: order.clone() });
        created.total += 1;
        order
    }

    fn order(&self, number: OrderNumber, now: Timestamp) -> Option<Order> {
        if let Some(created) = self.lock().kept.iter().find(|created| created.order.number == number) {
            return Some(created.order.clone());
        }
        DEMO.iter()
            .filter_map(|record| record.order)
            .find(|(demo_number, ..)| *demo_number == number.number())
            .and_then(|(demo_number, product, state, age)| self.demo_order(demo_number, product, state, age, now))
    }

    fn latest_order(&self, document: &Document, now: Timestamp) -> Option<Order> {
        if let Some(created) = self.lock().kept.iter().rev().find(|created| created.document == document.digits()) {
            return Some(created.order.clone());
        }
        let (number, product, state, age) = DemoBackend::record(document)?.order?;
        self.demo_order(number, product, state, age, now)
    }

    fn certificate(&self, document: &Document, now: Timestamp) -> Option<Certificate> {
        let (product, expires_in) = DemoBackend::record(document)?.certificate?;
        Some(Certificate { product, expires: Day::of(now).plus(expires_in) })
    }

    fn open_invoice(&self, document: &Document, now: Timestamp) -> Option<Invoice> {
        let amount = Cents(DemoBackend::record(document)?.invoice?);
        let due = Day::of(now).plus(5);
        let reference = fnv(&[document.digits().as_bytes(), &amount.0.to_le_bytes()]);
        Some(Invoice {
            amount,
            due,
            digitable_line: digitable_line(amount, due, reference),
            link: format!("https://certifacil.example/boleto/{:08x}", reference & 0xffff_ffff),
        })
    }

    fn payment_plan(&self, invoice: &Invoice, installments: u64, now: Timestamp) -> PaymentPlan {
        let installments = installments.max(1);
        PaymentPlan {
            installments,
            each: invoice.amount.split(installments),
            first_due: Day::of(now).plus(3),
            link: format!("{}/parcelas-{installments}", invoice.link),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_795_608_000_000);

    fn doc(text: &str) -> Document {
        Document::parse(text).unwrap()
    }

    #[test]
    fn product_codes_round_trip() {
        assert_eq!(Product::all().count(), 6);
        for product in Product::all() {
            assert_eq!(Product::from_code(&product.code()), Some(product));
        }
        assert_eq!(Product::from_code("ecpf_a3_token").map(|p| p.media), Some(Media::A3Token));
        assert_eq!(Product::from_code("nada"), None);
    }

    #[test]
    fn the_demo_tells_the_documented_story_relative_to_now() {
        let backend = DemoBackend::new();
        let today = Day::of(NOW);
        let ana = backend.certificate(&doc("529.982.247-25"), NOW).unwrap();
        assert_eq!(ana.expires, today.plus(12));
        assert!(backend.certificate(&doc("111.444.777-35"), NOW).unwrap().expires < today.plus(-365));
        assert!(backend.certificate(&doc("123.456.789-09"), NOW).is_none());
        assert!(backend.open_invoice(&doc("111.444.777-35"), NOW).is_none());
        let invoice = backend.open_invoice(&doc("11.222.333/0001-81"), NOW).unwrap();
        assert_eq!(invoice.amount.to_string(), "R$ 1.379,70");
        assert_eq!(invoice.digitable_line.chars().filter(char::is_ascii_digit).count(), 47);
        let states: Vec<OrderState> =
            (100_001..=100_003).map(|n| backend.order(OrderNumber::new(n).unwrap(), NOW).unwrap().state).collect();
        assert_eq!(states, [OrderState::AwaitingPayment, OrderState::AwaitingValidation, OrderState::Issued]);
        assert!(backend.order(OrderNumber::new(100_009).unwrap(), NOW).is_none());
    }

    #[test]
    fn created_orders_are_deterministic_and_found_again() {
        let request = OrderRequest {
            product: Product { cert: CertType::ECpf, media: Media::A1 },
            document: doc("123.456.789-09"),
            email: Some("ana@exemplo.com".to_owned()),
            validation: Some(Validation::VideoCall),
            renewal: false,
        };
        let first = DemoBackend::new().create_order(&request, NOW);
        let backend = DemoBackend::new();
        let again = backend.create_order(&request, NOW);
        assert_eq!(first, again);
        assert!(again.number.number() >= 200_000);
        assert_eq!(again.price.to_string(), "R$ 159,90");
        assert_eq!(backend.order(again.number, NOW), Some(again.clone()));
        assert_eq!(backend.latest_order(&request.document, NOW), Some(again.clone()));
        let second = backend.create_order(&request, NOW);
        assert_ne!(second.number, again.number);
        assert!(!format!("{backend:?}").contains("123456789"));
    }

    #[test]
    fn the_demo_forgets_the_oldest_created_orders_beyond_its_limit() {
        let backend = DemoBackend::new();
        let request = OrderRequest {
            product: Product { cert: CertType::ECnpj, media: Media::A3Card },
            document: doc("11.222.333/0001-81"),
            email: None,
            validation: None,
            renewal: true,
        };
        let first = backend.create_order(&request, NOW);
        let mut last = first.clone();
        for _ in 0..MAX_CREATED_ORDERS {
            last = backend.create_order(&request, NOW);
        }
        assert_eq!(backend.order(first.number, NOW), None);
        assert_eq!(backend.order(last.number, NOW), Some(last.clone()));
        assert_eq!(backend.latest_order(&request.document, NOW), Some(last));
    }
}
