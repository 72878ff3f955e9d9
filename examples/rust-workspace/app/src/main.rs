fn main() {
    println!("{}", greeting::greeting("BrewKit"));
}
